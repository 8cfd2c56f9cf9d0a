//! Rendering counters: the `stats` table and its JSON object.

use serde::Serialize;
use xdpwall_dataplane::stats::Stats;
use xdpwall_dataplane::xdperr::XdpErrors;

/// Facts shown above the counters.
pub struct Header<'a> {
    /// Interface.
    pub iface: &'a str,
    /// Attach mode name.
    pub mode: &'a str,
    /// Event transport name.
    pub transport: &'a str,
    /// Event counts: produced by the program, delivered to `run`, lost.
    pub events: EventCounts,
    /// XDP errors the kernel reported for the program (None: not shown).
    pub xdp_errors: Option<XdpErrors>,
    /// Whether tracepoint programs count them now (None: unknown).
    pub xdp_counting: Option<bool>,
}

/// Event counts shown by `stats`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventCounts {
    /// Events the program tried to emit.
    pub produced: u64,
    /// Events the running consumer received.
    pub delivered: u64,
    /// Events lost in the kernel (buffer full).
    pub lost: u64,
}

#[derive(Serialize)]
struct JsonRule<'a> {
    name: &'a str,
    action: &'a str,
    packets: u64,
    bytes: u64,
    /// `rate_limit` rules: packets over the limit (dropped).
    #[serde(skip_serializing_if = "Option::is_none")]
    limited: Option<u64>,
    /// `redirect` rules: packets dropped because the target is gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_errors: Option<u64>,
}

#[derive(Serialize)]
struct JsonDefault<'a> {
    action: &'a str,
    packets: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct JsonEvents {
    produced: u64,
    delivered: u64,
    lost: u64,
}

#[derive(Serialize)]
struct JsonStats<'a> {
    iface: &'a str,
    mode: &'a str,
    transport: &'a str,
    rules: Vec<JsonRule<'a>>,
    default: JsonDefault<'a>,
    malformed: serde_json::Map<String, serde_json::Value>,
    malformed_action: &'a str,
    events: JsonEvents,
    xdp_errors: serde_json::Map<String, serde_json::Value>,
}

/// The `stats --json` object (DESIGN.md keys).
pub fn stats_json(h: &Header<'_>, s: &Stats) -> String {
    let mut malformed = serde_json::Map::new();
    for (reason, c) in &s.malformed {
        malformed.insert((*reason).to_string(), c.packets.into());
    }
    let xe = h.xdp_errors.unwrap_or_default();
    let mut xdp_errors = serde_json::Map::new();
    for (kind, n) in xe.by_kind() {
        xdp_errors.insert(kind.to_string(), n.into());
    }
    let by_action: serde_json::Map<String, serde_json::Value> = xe
        .by_action()
        .map(|(a, n)| (a.to_string(), n.into()))
        .collect();
    xdp_errors.insert("exception_by_action".into(), by_action.into());
    if let Some(c) = h.xdp_counting {
        xdp_errors.insert("counting".into(), c.into());
    }
    let obj = JsonStats {
        iface: h.iface,
        mode: h.mode,
        transport: h.transport,
        rules: s
            .rules
            .iter()
            .map(|r| JsonRule {
                name: &r.name,
                action: r.action,
                packets: r.counter.packets,
                bytes: r.counter.bytes,
                limited: (r.action == "rate_limit").then_some(r.limited.packets),
                redirect_errors: (r.action == "redirect").then_some(r.redirect_errors.packets),
            })
            .collect(),
        default: JsonDefault {
            action: s.default_action,
            packets: s.default.packets,
            bytes: s.default.bytes,
        },
        malformed,
        malformed_action: s.malformed_action,
        events: JsonEvents {
            produced: h.events.produced,
            delivered: h.events.delivered,
            lost: h.events.lost,
        },
        xdp_errors,
    };
    serde_json::to_string(&obj).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Lines under the table for the protection actions: packets over each
/// rate limit (always, when there are rate limits) and redirects that
/// found no target (only when some did).
fn action_lines(s: &Stats) -> String {
    let mut out = String::new();
    let limits: Vec<String> = s
        .rules
        .iter()
        .filter(|r| r.action == "rate_limit")
        .map(|r| format!("{}={}", r.name, r.limited.packets))
        .collect();
    if !limits.is_empty() {
        out.push_str(&format!(
            "  over the rate limit (dropped): {}\n",
            limits.join(" ")
        ));
    }
    let errors: Vec<String> = s
        .rules
        .iter()
        .filter(|r| r.redirect_errors.packets > 0)
        .map(|r| format!("{}={}", r.name, r.redirect_errors.packets))
        .collect();
    if !errors.is_empty() {
        out.push_str(&format!(
            "  redirect target gone (dropped): {}\n",
            errors.join(" ")
        ));
    }
    out
}

/// The human table; `prev` adds a column of changes since that snapshot.
pub fn stats_table(h: &Header<'_>, s: &Stats, prev: Option<&Stats>) -> String {
    let mut rows: Vec<[String; 5]> = Vec::new();
    let delta = |now: u64, name: &str, is_default: bool| -> String {
        let Some(p) = prev else { return String::new() };
        let before = if is_default {
            p.default.packets
        } else {
            p.rules
                .iter()
                .find(|r| r.name == name)
                .map_or(0, |r| r.counter.packets)
        };
        let d = now.saturating_sub(before);
        if d == 0 {
            String::new()
        } else {
            format!("+{d}")
        }
    };
    for r in &s.rules {
        rows.push([
            r.name.clone(),
            r.action.to_string(),
            r.counter.packets.to_string(),
            r.counter.bytes.to_string(),
            delta(r.counter.packets, &r.name, false),
        ]);
    }
    rows.push([
        "(default)".into(),
        s.default_action.into(),
        s.default.packets.to_string(),
        s.default.bytes.to_string(),
        delta(s.default.packets, "", true),
    ]);
    let head = [
        "RULE",
        "ACTION",
        "PACKETS",
        "BYTES",
        if prev.is_some() { "CHANGE" } else { "" },
    ];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let mut out = format!("{} ({} mode)\n", h.iface, h.mode);
    let line = |c: &[String; 5]| {
        format!(
            "  {:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:<w4$}",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4]
        )
        .trim_end()
        .to_string()
    };
    out.push_str(&line(&head.map(String::from)));
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    let mal: Vec<String> = s
        .malformed
        .iter()
        .filter(|(_, c)| c.packets > 0)
        .map(|(reason, c)| format!("{reason}={}", c.packets))
        .collect();
    let total: u64 = s.malformed.iter().map(|(_, c)| c.packets).sum();
    out.push_str(&format!(
        "  malformed: {total} ({}){}\n",
        s.malformed_action,
        if mal.is_empty() {
            String::new()
        } else {
            format!(": {}", mal.join(" "))
        }
    ));
    out.push_str(&action_lines(s));
    if let Some(xe) = &h.xdp_errors {
        out.push_str(&xdp_errors_line(xe, h.xdp_counting));
    }
    let e = h.events;
    if e.produced > 0 {
        out.push_str(&format!(
            "  events ({}): produced {}, delivered {}, lost {}\n",
            h.transport, e.produced, e.delivered, e.lost
        ));
    }
    out
}

/// The `stats` line of XDP errors: totals by kind, exceptions by action,
/// and a note when nothing counts them (no `run` serves the program).
pub fn xdp_errors_line(e: &XdpErrors, counting: Option<bool>) -> String {
    let actions: Vec<String> = e
        .by_action()
        .filter(|(_, n)| *n > 0)
        .map(|(a, n)| format!("{a}={n}"))
        .collect();
    format!(
        "  xdp errors: exception {}{}, redirect {}, redirect (map) {}{}\n",
        e.exception_total(),
        if actions.is_empty() {
            String::new()
        } else {
            format!(" ({})", actions.join(" "))
        },
        e.redirect_err,
        e.redirect_map_err,
        if counting == Some(false) {
            " [not counting: the `xdpwall run` that attached the program has exited]"
        } else {
            ""
        }
    )
}
