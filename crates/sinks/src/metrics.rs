//! The Prometheus text exposition (format 0.0.4) of xdpwall's counters,
//! with the metric names of DESIGN.md. Labels carry only bounded values:
//! rule names (from the config), actions, reasons, transport, mode.

use std::fmt::Write as _;

/// Counters of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMetrics {
    /// Rule name.
    pub name: String,
    /// Action name.
    pub action: String,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// `rate_limit`: packets over the limit (dropped), else 0.
    pub limited: u64,
    /// `redirect`: packets dropped for want of a target, else 0.
    pub redirect_errors: u64,
}

/// Everything one scrape shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Per rule.
    pub rules: Vec<RuleMetrics>,
    /// Default action name.
    pub default_action: String,
    /// Packets the default action decided.
    pub default_packets: u64,
    /// Malformed packets by reason.
    pub malformed: Vec<(String, u64)>,
    /// Event transport name.
    pub transport: String,
    /// Events delivered to the consumer.
    pub events_delivered: u64,
    /// Events lost in the kernel.
    pub events_lost: u64,
    /// Successful reloads.
    pub reloads_ok: u64,
    /// Failed reloads.
    pub reloads_failed: u64,
    /// Attach mode name ("native" or "generic").
    pub mode: String,
    /// XDP errors the kernel reported, by kind (`exception`,
    /// `redirect_err`, `redirect_map_err`).
    pub xdp_errors: Vec<(String, u64)>,
    /// XDP exceptions by the action that caused them (`aborted`, …).
    pub xdp_exceptions: Vec<(String, u64)>,
}

/// Escapes a label value (backslash, double quote, newline).
fn esc(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders a snapshot as the text exposition format.
#[must_use]
pub fn render(m: &MetricsSnapshot) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "xdpwall_rule_packets_total",
        "counter",
        "Packets matched by each rule.",
    );
    for r in &m.rules {
        let _ = writeln!(
            out,
            "xdpwall_rule_packets_total{{rule=\"{}\",action=\"{}\"}} {}",
            esc(&r.name),
            esc(&r.action),
            r.packets
        );
    }
    family(
        &mut out,
        "xdpwall_rule_bytes_total",
        "counter",
        "Bytes matched by each rule.",
    );
    for r in &m.rules {
        let _ = writeln!(
            out,
            "xdpwall_rule_bytes_total{{rule=\"{}\",action=\"{}\"}} {}",
            esc(&r.name),
            esc(&r.action),
            r.bytes
        );
    }
    family(
        &mut out,
        "xdpwall_default_packets_total",
        "counter",
        "Packets no terminal rule matched.",
    );
    let _ = writeln!(
        out,
        "xdpwall_default_packets_total{{action=\"{}\"}} {}",
        esc(&m.default_action),
        m.default_packets
    );
    family(
        &mut out,
        "xdpwall_malformed_packets_total",
        "counter",
        "Packets that could not be parsed far enough, by reason.",
    );
    for (reason, n) in &m.malformed {
        let _ = writeln!(
            out,
            "xdpwall_malformed_packets_total{{reason=\"{}\"}} {n}",
            esc(reason)
        );
    }
    family(
        &mut out,
        "xdpwall_ratelimited_packets_total",
        "counter",
        "Packets over a rate_limit rule's limit (dropped).",
    );
    for r in m.rules.iter().filter(|r| r.action == "rate_limit") {
        let _ = writeln!(
            out,
            "xdpwall_ratelimited_packets_total{{rule=\"{}\"}} {}",
            esc(&r.name),
            r.limited
        );
    }
    family(
        &mut out,
        "xdpwall_redirect_errors_total",
        "counter",
        "Packets a redirect rule dropped because its target interface is gone.",
    );
    for r in m.rules.iter().filter(|r| r.action == "redirect") {
        let _ = writeln!(
            out,
            "xdpwall_redirect_errors_total{{rule=\"{}\"}} {}",
            esc(&r.name),
            r.redirect_errors
        );
    }
    family(
        &mut out,
        "xdpwall_events_total",
        "counter",
        "Events delivered to user space.",
    );
    let _ = writeln!(
        out,
        "xdpwall_events_total{{transport=\"{}\"}} {}",
        esc(&m.transport),
        m.events_delivered
    );
    family(
        &mut out,
        "xdpwall_events_lost_total",
        "counter",
        "Events lost in the kernel because the buffer was full.",
    );
    let _ = writeln!(
        out,
        "xdpwall_events_lost_total{{transport=\"{}\"}} {}",
        esc(&m.transport),
        m.events_lost
    );
    family(
        &mut out,
        "xdpwall_reloads_total",
        "counter",
        "Config reloads, by result.",
    );
    let _ = writeln!(
        out,
        "xdpwall_reloads_total{{result=\"ok\"}} {}",
        m.reloads_ok
    );
    let _ = writeln!(
        out,
        "xdpwall_reloads_total{{result=\"error\"}} {}",
        m.reloads_failed
    );
    family(
        &mut out,
        "xdpwall_xdp_errors_total",
        "counter",
        "XDP errors the kernel reported for the program on its interface (xdp:xdp_exception, xdp:xdp_redirect_err), by kind.",
    );
    for (kind, n) in &m.xdp_errors {
        let _ = writeln!(
            out,
            "xdpwall_xdp_errors_total{{kind=\"{}\"}} {n}",
            esc(kind)
        );
    }
    family(
        &mut out,
        "xdpwall_xdp_exceptions_total",
        "counter",
        "XDP exceptions (xdp:xdp_exception) by the XDP action that caused them.",
    );
    for (action, n) in &m.xdp_exceptions {
        let _ = writeln!(
            out,
            "xdpwall_xdp_exceptions_total{{action=\"{}\"}} {n}",
            esc(action)
        );
    }
    family(
        &mut out,
        "xdpwall_xdp_mode",
        "gauge",
        "The XDP attach mode in force (1 for the current mode).",
    );
    for mode in ["native", "generic"] {
        let _ = writeln!(
            out,
            "xdpwall_xdp_mode{{mode=\"{mode}\"}} {}",
            u8::from(m.mode == mode)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> MetricsSnapshot {
        MetricsSnapshot {
            rules: vec![
                RuleMetrics {
                    name: "ssh-others".into(),
                    action: "drop".into(),
                    packets: 12,
                    bytes: 888,
                    limited: 0,
                    redirect_errors: 0,
                },
                RuleMetrics {
                    name: "dns-limit".into(),
                    action: "rate_limit".into(),
                    packets: 30,
                    bytes: 2000,
                    limited: 7,
                    redirect_errors: 0,
                },
                RuleMetrics {
                    name: "to-ids".into(),
                    action: "redirect".into(),
                    packets: 5,
                    bytes: 500,
                    limited: 0,
                    redirect_errors: 2,
                },
                RuleMetrics {
                    name: "we\"ird\\name".into(),
                    action: "count".into(),
                    packets: 1,
                    bytes: 60,
                    limited: 0,
                    redirect_errors: 0,
                },
            ],
            default_action: "pass".into(),
            default_packets: 40,
            malformed: vec![("truncated".into(), 1), ("bad_header".into(), 0)],
            transport: "ringbuf".into(),
            events_delivered: 12,
            events_lost: 0,
            reloads_ok: 2,
            reloads_failed: 1,
            mode: "native".into(),
            xdp_errors: vec![
                ("exception".into(), 3),
                ("redirect_err".into(), 1),
                ("redirect_map_err".into(), 0),
            ],
            xdp_exceptions: vec![("aborted".into(), 3), ("invalid".into(), 0)],
        }
    }

    /// A small checker of the text format's rules promtool enforces: every
    /// sample belongs to a family declared once with HELP and TYPE before
    /// it, counters end in _total, label values are quoted and escaped,
    /// values are numbers, no sample repeats.
    fn check(text: &str) -> Result<(), String> {
        let mut declared = std::collections::BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').ok_or("bad TYPE")?;
                if declared
                    .insert(name.to_string(), kind.to_string())
                    .is_some()
                {
                    return Err(format!("{name} declared twice"));
                }
                if kind == "counter" && !name.ends_with("_total") {
                    return Err(format!("counter {name} must end in _total"));
                }
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let name_end = line.find(['{', ' ']).ok_or("no value")?;
            let name = &line[..name_end];
            if !declared.contains_key(name) {
                return Err(format!("{name} has no TYPE before it"));
            }
            let (series, value) = line.rsplit_once(' ').ok_or("no value")?;
            value
                .parse::<f64>()
                .map_err(|_| format!("bad value in {line}"))?;
            if !seen.insert(series.to_string()) {
                return Err(format!("duplicate series {series}"));
            }
            if let Some(labels) = series.strip_prefix(name).and_then(|l| l.strip_prefix('{')) {
                let labels = labels.strip_suffix('}').ok_or("unterminated labels")?;
                let mut chars = labels.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
                    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return Err(format!("bad label name {key:?}"));
                    }
                    if chars.next() != Some('"') {
                        return Err("label value not quoted".into());
                    }
                    loop {
                        match chars.next() {
                            Some('\\') => {
                                chars.next();
                            }
                            Some('"') => break,
                            Some(_) => {}
                            None => return Err("unterminated label value".into()),
                        }
                    }
                    match chars.next() {
                        Some(',') | None => {}
                        Some(c) => return Err(format!("unexpected {c:?} after a label")),
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn renders_design_names_and_values() {
        let t = render(&snapshot());
        assert!(t.contains("xdpwall_rule_packets_total{rule=\"ssh-others\",action=\"drop\"} 12\n"));
        assert!(t.contains("xdpwall_rule_bytes_total{rule=\"ssh-others\",action=\"drop\"} 888\n"));
        assert!(t.contains("xdpwall_default_packets_total{action=\"pass\"} 40\n"));
        assert!(t.contains("xdpwall_malformed_packets_total{reason=\"truncated\"} 1\n"));
        assert!(t.contains("xdpwall_events_total{transport=\"ringbuf\"} 12\n"));
        assert!(t.contains("xdpwall_events_lost_total{transport=\"ringbuf\"} 0\n"));
        assert!(t.contains("xdpwall_reloads_total{result=\"error\"} 1\n"));
        assert!(t.contains("xdpwall_xdp_mode{mode=\"native\"} 1\n"));
        assert!(t.contains("xdpwall_xdp_mode{mode=\"generic\"} 0\n"));
        assert!(t.contains("xdpwall_xdp_errors_total{kind=\"exception\"} 3\n"));
        assert!(t.contains("xdpwall_xdp_errors_total{kind=\"redirect_err\"} 1\n"));
        assert!(t.contains("xdpwall_xdp_exceptions_total{action=\"aborted\"} 3\n"));
        assert!(t.contains("xdpwall_ratelimited_packets_total{rule=\"dns-limit\"} 7\n"));
        assert!(t.contains("xdpwall_redirect_errors_total{rule=\"to-ids\"} 2\n"));
        // Only rules with that action get a series.
        assert_eq!(t.matches("xdpwall_ratelimited_packets_total{").count(), 1);
        assert_eq!(t.matches("xdpwall_redirect_errors_total{").count(), 1);
    }

    #[test]
    fn output_follows_the_text_format() {
        check(&render(&snapshot())).unwrap_or_else(|e| panic!("{e}\n{}", render(&snapshot())));
        check(&render(&MetricsSnapshot::default())).unwrap_or_else(|e| panic!("{e}"));
        // The checker itself rejects what promtool rejects.
        assert!(check("# TYPE a_total counter\na_total{x=\"1} 1\n").is_err());
        assert!(check("b 1\n").is_err());
        assert!(check("# TYPE c counter\nc 1\n").is_err());
    }

    #[test]
    fn label_values_are_escaped() {
        let t = render(&snapshot());
        assert!(t.contains("rule=\"we\\\"ird\\\\name\""), "{t}");
    }
}
