//! Drawing `top`'s state with ratatui widgets. Laid out for 80×24 and
//! up: a title line, the rules table (rates, totals, a sparkline of the
//! packet rate), the heaviest dropped sources beside losses and XDP
//! errors, and a key line. Nothing here touches the terminal: tests draw
//! into ratatui's `TestBackend`.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row as TRow, Table};
use ratatui::Frame;

use super::state::{Data, TapStatus, Top, HISTORY};

/// Height of the sources/losses panels (borders included).
const BOTTOM: u16 = 8;
/// Sparkline levels, empty to full.
const BARS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A number in 4–6 characters: 999, 1.2k, 34.5M, 1.0G.
#[must_use]
pub fn si(v: f64) -> String {
    let v = v.max(0.0);
    if v < 999.5 {
        format!("{v:.0}")
    } else if v < 999_950.0 {
        format!("{:.1}k", v / 1e3)
    } else if v < 999_950_000.0 {
        format!("{:.1}M", v / 1e6)
    } else {
        format!("{:.1}G", v / 1e9)
    }
}

/// A sparkline of `points`, scaled to their maximum, one char per point.
#[must_use]
pub fn sparkline(points: &[f64]) -> String {
    let max = points.iter().copied().fold(0.0_f64, f64::max);
    points
        .iter()
        .map(|&v| {
            if max <= 0.0 || v <= 0.0 {
                BARS[0]
            } else {
                // At least one level for any traffic, eight at the maximum.
                let level = ((v / max) * 8.0).ceil().clamp(1.0, 8.0) as usize;
                BARS[level]
            }
        })
        .collect()
}

/// Styles, or none when colour is off (NO_COLOR).
#[derive(Clone, Copy)]
struct Theme {
    colour: bool,
}

impl Theme {
    fn fg(self, c: Color) -> Style {
        if self.colour {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    fn bold(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    fn action(self, a: &str) -> Style {
        match a {
            "drop" => self.fg(Color::Red),
            "pass" => self.fg(Color::Green),
            "count" => self.fg(Color::Yellow),
            _ => Style::default(),
        }
    }
    fn bad(self, n: u64) -> Style {
        if n > 0 {
            self.fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        }
    }
}

/// Draws the whole view.
pub fn draw(f: &mut Frame<'_>, top: &Top, colour: bool) {
    let theme = Theme { colour };
    let [title, rules, bottom, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(4),
        Constraint::Length(BOTTOM),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_title(f, title, top, theme);
    draw_rules(f, rules, top, theme);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(bottom);
    draw_sources(f, left, top.shown(), theme);
    draw_losses(f, right, top, theme);
    draw_keys(f, keys, top, theme);
    if top.ui.help {
        draw_help(f, rules.union(bottom));
    }
}

fn draw_title(f: &mut Frame<'_>, area: Rect, top: &Top, t: Theme) {
    let h = &top.head;
    let mut spans = vec![
        Span::styled(" xdpwall top ", t.bold()),
        Span::raw(format!(
            " {} · {} · prog {} · every {} ms · sort {}",
            h.iface,
            h.mode,
            h.prog_id,
            h.interval_ms,
            top.ui.sort.label()
        )),
    ];
    if top.ui.paused {
        spans.push(Span::styled(
            "  PAUSED",
            t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_rules(f: &mut Frame<'_>, area: Rect, top: &Top, t: Theme) {
    let rows = top.visible_rows();
    let inner_w = area.width.saturating_sub(2) as usize;
    // Fixed columns: action 6, pkt/s 7, bytes/s 8, total 7, five gaps.
    let fixed = 6 + 7 + 8 + 7 + 5;
    let hist_w = inner_w
        .saturating_sub(fixed + 16)
        .clamp(8, HISTORY)
        .min(inner_w.saturating_sub(fixed));
    let name_w = inner_w.saturating_sub(fixed + hist_w).max(4);
    let fit = area.height.saturating_sub(3) as usize;
    let scroll = top.ui.scroll.min(rows.len().saturating_sub(fit));
    let body: Vec<TRow<'_>> = rows
        .iter()
        .skip(scroll)
        .take(fit)
        .map(|r| {
            TRow::new(vec![
                Cell::from(r.name.clone()),
                Cell::from(Span::styled(r.action.clone(), t.action(&r.action))),
                Cell::from(Line::from(si(r.pps)).right_aligned()),
                Cell::from(Line::from(format!("{}B", si(r.bps))).right_aligned()),
                Cell::from(Line::from(si(r.packets as f64)).right_aligned()),
                Cell::from(Span::styled(
                    sparkline(&r.history.last(hist_w)),
                    t.action(&r.action),
                )),
            ])
        })
        .collect();
    let header = TRow::new(vec![
        Cell::from("RULE"),
        Cell::from("ACTION"),
        Cell::from(Line::from("PKT/S").right_aligned()),
        Cell::from(Line::from("BYTES/S").right_aligned()),
        Cell::from(Line::from("TOTAL").right_aligned()),
        Cell::from("PKT/S HISTORY"),
    ])
    .style(t.bold());
    let mut title = format!(" Rules ({} of {}", rows.len(), top.shown().rows.len());
    if !top.ui.filter.is_empty() {
        title.push_str(&format!(", filter \"{}\"", top.ui.filter));
    }
    if scroll > 0 || rows.len() > fit {
        title.push_str(&format!(
            ", rows {}-{}",
            scroll + 1,
            (scroll + fit).min(rows.len())
        ));
    }
    title.push_str(") ");
    let widths = [
        Constraint::Length(name_w as u16),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(hist_w as u16),
    ];
    let table = Table::new(body, widths)
        .header(header)
        .column_spacing(1)
        .block(Block::default().borders(Borders::ALL).title(title));
    f.render_widget(table, area);
}

fn draw_sources(f: &mut Frame<'_>, area: Rect, d: &Data, t: Theme) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" Top dropped sources ");
    let rows: Vec<TRow<'_>> = d
        .sources
        .iter()
        .map(|s| {
            let share = if d.tapped > 0 {
                format!("{:.0}%", 100.0 * s.packets as f64 / d.tapped as f64)
            } else {
                String::new()
            };
            TRow::new(vec![
                Cell::from(
                    s.addr
                        .map_or_else(|| "(not IP)".to_string(), |a| a.to_string()),
                ),
                Cell::from(Line::from(si(s.packets as f64)).right_aligned()),
                Cell::from(Line::from(share).right_aligned()),
                Cell::from(Span::styled(
                    // No rule: the default action or the malformed policy.
                    s.rule.clone().unwrap_or_else(|| "(no rule)".into()),
                    t.fg(Color::Red),
                )),
            ])
        })
        .collect();
    if rows.is_empty() {
        let why = match &d.tap {
            TapStatus::On => "no dropped packets tapped yet".to_string(),
            TapStatus::Busy => "tap busy: another capture/top holds it (retrying)".to_string(),
            TapStatus::Failed(e) => format!("tap failed: {e}"),
        };
        f.render_widget(
            Paragraph::new(why)
                .wrap(ratatui::widgets::Wrap { trim: true })
                .block(block),
            area,
        );
        return;
    }
    let header = TRow::new(vec![
        Cell::from("SOURCE"),
        Cell::from(Line::from("PKTS").right_aligned()),
        Cell::from(Line::from("SHARE").right_aligned()),
        Cell::from("RULE"),
    ])
    .style(t.bold());
    let table = Table::new(
        rows,
        [
            Constraint::Min(15),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Max(14),
        ],
    )
    .header(header)
    .column_spacing(1)
    .block(block);
    f.render_widget(table, area);
}

fn draw_losses(f: &mut Frame<'_>, area: Rect, top: &Top, t: Theme) {
    let d = top.shown();
    let s = &d.last;
    let tap_lost = d.since_start(|s| s.tap_lost);
    let tap = match &d.tap {
        TapStatus::On => "on",
        TapStatus::Busy => "busy",
        TapStatus::Failed(_) => "failed",
    };
    let x = &s.xdp_errors;
    let line = |label: &str, value: Span<'static>| {
        Line::from(vec![Span::raw(format!("{label:<12}")), value])
    };
    let lines = vec![
        line(
            "events lost",
            Span::styled(
                format!(
                    "{} of {}",
                    si(s.events_lost as f64),
                    si(s.events_produced as f64)
                ),
                t.bad(s.events_lost),
            ),
        ),
        line(
            "tap lost",
            Span::styled(
                format!("{} (tap {tap})", si(tap_lost as f64)),
                t.bad(tap_lost),
            ),
        ),
        line(
            "tapped",
            Span::raw(format!("{} drops, {} srcs", si(d.tapped as f64), d.tracked)),
        ),
        line(
            "xdp errors",
            Span::styled(
                format!(
                    "exc {} · redir {}",
                    si(x.exception_total() as f64),
                    si(x.redirect_total() as f64),
                ),
                t.bad(x.total()),
            ),
        ),
        line(
            "  counted",
            match s.xdp_counting {
                Some(true) => Span::raw("yes, by run"),
                Some(false) => Span::styled("no: run has exited", t.fg(Color::Yellow)),
                None => Span::raw("?"),
            },
        ),
        line("malformed", Span::raw(si(s.malformed as f64))),
    ];
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Loss & errors "),
        ),
        area,
    );
}

fn draw_keys(f: &mut Frame<'_>, area: Rect, top: &Top, t: Theme) {
    let line = match &top.ui.editing {
        Some(text) => Line::from(vec![
            Span::styled(" filter: ", t.bold()),
            Span::raw(format!("{text}_")),
            Span::raw("   Enter apply · Esc cancel"),
        ]),
        None => Line::from(vec![
            Span::styled(" q", t.bold()),
            Span::raw(" quit  "),
            Span::styled("s", t.bold()),
            Span::raw(" sort  "),
            Span::styled("/", t.bold()),
            Span::raw(" filter  "),
            Span::styled("p", t.bold()),
            Span::raw(if top.ui.paused {
                " resume  "
            } else {
                " pause  "
            }),
            Span::styled("↑↓", t.bold()),
            Span::raw(" scroll  "),
            Span::styled("?", t.bold()),
            Span::raw(" help"),
        ]),
    };
    f.render_widget(Paragraph::new(line), area);
}

fn draw_help(f: &mut Frame<'_>, area: Rect) {
    let text = vec![
        Line::from("q, Esc, Ctrl-C  quit (the tap is turned off)"),
        Line::from("s               sort: pkt/s, bytes/s, name, total"),
        Line::from("/               filter rules by name (Enter, Esc)"),
        Line::from("p               pause / resume the display"),
        Line::from("↑ ↓ PgUp PgDn   scroll the rules"),
        Line::from(""),
        Line::from("Sources: dropped packets tapped from the data plane"),
        Line::from("since top started (heaviest of a bounded table)."),
        Line::from("XDP errors are counted only while `xdpwall run` lives."),
        Line::from("any key closes this help"),
    ];
    let w = 56.min(area.width);
    let h = (text.len() as u16 + 2).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(" Keys ")),
        r,
    );
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use xdpwall_dataplane::xdperr::XdpErrors;

    use super::super::state::{Head, Key, RuleSample, Sample};
    use super::super::topk::Entry;
    use super::*;

    /// Draws `top` at `w`×`h` and returns the screen, one string per line.
    fn screen(top: &Top, w: u16, h: u16) -> Vec<String> {
        let mut term = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
        term.draw(|f| draw(f, top, true)).expect("draw");
        let buf = term.backend().buffer().clone();
        (0..h)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect())
            .collect()
    }

    fn row_of(lines: &[String], needle: &str) -> Option<usize> {
        lines.iter().position(|l| l.contains(needle))
    }

    fn rule(name: &str, action: &str, packets: u64, bytes: u64) -> RuleSample {
        RuleSample {
            name: name.into(),
            action: action.into(),
            packets,
            bytes,
        }
    }

    /// Three rules with known rates after two samples one second apart,
    /// two dropped sources, some losses and errors.
    fn fixture() -> Top {
        let mut t = Top::new(Head {
            iface: "xwb".into(),
            mode: "native".into(),
            prog_id: 42,
            interval_ms: 1000,
        });
        let base = |tap_lost| Sample {
            rules: vec![
                rule("ssh-drop", "drop", 0, 0),
                rule("dns", "pass", 0, 0),
                rule("count-icmp", "count", 0, 0),
                rule("(default)", "pass", 0, 0),
            ],
            tap_lost,
            ..Sample::default()
        };
        t.data_mut().sample(0.0, base(3));
        t.data_mut().sample(
            1.0,
            Sample {
                rules: vec![
                    rule("ssh-drop", "drop", 2500, 185_000),
                    rule("dns", "pass", 40, 3_200_000),
                    rule("count-icmp", "count", 700, 70_000),
                    rule("(default)", "pass", 5, 500),
                ],
                events_produced: 120,
                events_lost: 9,
                tap_lost: 10,
                xdp_errors: XdpErrors {
                    exceptions: [4, 0, 0, 0, 0, 0],
                    redirect_err: 2,
                    redirect_map_err: 0,
                },
                malformed: 1,
                xdp_counting: Some(true),
                ..Sample::default()
            },
        );
        let e = |a: [u8; 4], packets, tag| Entry {
            key: Some(IpAddr::from(a)),
            packets,
            bytes: packets * 74,
            error: 0,
            tag,
        };
        t.data_mut().set_sources(
            vec![e([198, 51, 100, 7], 1800, 0), e([203, 0, 113, 9], 600, 0)],
            2400,
            2,
            &["ssh-drop".to_string()],
        );
        t
    }

    #[test]
    fn the_view_fits_80x24_with_rules_rates_sources_and_losses() {
        let lines = screen(&fixture(), 80, 24);
        let all = lines.join("\n");
        assert!(lines[0].contains("xdpwall top"), "{all}");
        assert!(lines[0].contains("xwb · native · prog 42"), "{all}");
        for name in ["ssh-drop", "dns", "count-icmp", "(default)"] {
            assert!(all.contains(name), "{name} missing:\n{all}");
        }
        // Rates: 2500 pkt/s and 185 kB/s for ssh-drop; 3.2 MB/s for dns.
        let ssh = &lines[row_of(&lines, "ssh-drop").expect("ssh row")];
        assert!(ssh.contains("2.5k") && ssh.contains("185.0kB"), "{ssh}");
        let dns = &lines[row_of(&lines, "│dns").expect("dns row")];
        assert!(dns.contains("3.2MB"), "{dns}");
        // The sparkline shows the one interval's rate at full height.
        assert!(ssh.contains('█'), "{ssh}");
        // Sources, their share and the rule that dropped them.
        let src = &lines[row_of(&lines, "198.51.100.7").expect("source row")];
        assert!(src.contains("1.8k") && src.contains("75%"), "{src}");
        assert!(all.contains("203.0.113.9"), "{all}");
        // Losses since top started, XDP errors, mode.
        assert!(all.contains("events lost 9 of 120"), "{all}");
        assert!(all.contains("tap lost    7 (tap on)"), "{all}");
        assert!(all.contains("exc 4 · redir 2"), "{all}");
        assert!(all.contains("  counted   yes, by run"), "{all}");
        assert!(
            lines[23].contains("q quit") && lines[23].contains("/ filter"),
            "{all}"
        );
    }

    #[test]
    fn rows_follow_the_sort_key() {
        let mut t = fixture();
        let order = |t: &Top| {
            let lines = screen(t, 80, 24);
            let mut v: Vec<(usize, &str)> = ["ssh-drop", "│dns", "count-icmp", "(default)"]
                .iter()
                .map(|n| (row_of(&lines, n).expect("row"), *n))
                .collect();
            v.sort_unstable();
            v.into_iter()
                .map(|(_, n)| n.trim_start_matches('│'))
                .collect::<Vec<_>>()
        };
        assert_eq!(order(&t), ["ssh-drop", "count-icmp", "dns", "(default)"]);
        t.on_key(Key::Char('s'));
        assert_eq!(order(&t), ["dns", "ssh-drop", "count-icmp", "(default)"]);
        assert!(screen(&t, 80, 24)[0].contains("sort bytes/s"));
        t.on_key(Key::Char('s'));
        assert_eq!(order(&t), ["(default)", "count-icmp", "dns", "ssh-drop"]);
    }

    #[test]
    fn the_filter_hides_other_rules_and_is_shown() {
        let mut t = fixture();
        t.on_key(Key::Char('/'));
        for c in "ssh".chars() {
            t.on_key(Key::Char(c));
        }
        let editing = screen(&t, 80, 24).join("\n");
        assert!(editing.contains("filter: ssh_"), "{editing}");
        t.on_key(Key::Enter);
        let lines = screen(&t, 80, 24);
        let all = lines.join("\n");
        assert!(all.contains("Rules (1 of 4, filter \"ssh\")"), "{all}");
        assert!(row_of(&lines, "ssh-drop").is_some());
        assert!(row_of(&lines, "count-icmp").is_none(), "{all}");
        assert!(row_of(&lines, "│dns").is_none(), "{all}");
    }

    #[test]
    fn pause_help_and_a_busy_tap_are_shown() {
        let mut t = fixture();
        t.on_key(Key::Char('p'));
        assert!(screen(&t, 80, 24)[0].contains("PAUSED"));
        t.on_key(Key::Char('?'));
        let help = screen(&t, 80, 24).join("\n");
        assert!(help.contains("sort: pkt/s, bytes/s, name, total"), "{help}");
        let mut busy = Top::default();
        busy.data_mut().tap = TapStatus::Busy;
        let all = screen(&busy, 80, 24).join("\n");
        assert!(all.contains("tap busy"), "{all}");
        assert!(all.contains("(tap busy)"), "{all}");
    }

    #[test]
    fn many_rules_scroll_within_24_lines() {
        let mut t = Top::default();
        let rules = |n: u64| {
            (0..30)
                .map(|i| rule(&format!("rule-{i:02}"), "drop", n * i, n * i))
                .collect::<Vec<_>>()
        };
        t.data_mut().sample(
            0.0,
            Sample {
                rules: rules(0),
                ..Sample::default()
            },
        );
        t.data_mut().sample(
            1.0,
            Sample {
                rules: rules(10),
                ..Sample::default()
            },
        );
        let lines = screen(&t, 80, 24);
        let all = lines.join("\n");
        // Highest rate first; the title says which rows are shown.
        assert!(
            row_of(&lines, "rule-29").expect("top row") < row_of(&lines, "rule-28").expect("row")
        );
        assert!(all.contains("Rules (30 of 30, rows 1-11)"), "{all}");
        for _ in 0..100 {
            t.on_key(Key::Down);
        }
        let all = screen(&t, 80, 24).join("\n");
        assert!(all.contains("rows 20-30"), "{all}");
        assert!(all.contains("rule-00"), "{all}");
    }

    #[test]
    fn odd_sizes_draw_without_panicking() {
        let mut t = fixture();
        for (w, h) in [(1, 1), (10, 3), (40, 10), (79, 23), (200, 60)] {
            screen(&t, w, h);
        }
        t.on_key(Key::Char('?'));
        for (w, h) in [(1, 1), (10, 3), (40, 10)] {
            screen(&t, w, h);
        }
        // Wider terminals get a longer history.
        let wide = screen(&fixture(), 160, 24);
        assert!(wide[3].contains("ssh-drop"), "{}", wide.join("\n"));
    }

    #[test]
    fn numbers_and_sparklines() {
        assert_eq!(si(0.0), "0");
        assert_eq!(si(999.0), "999");
        assert_eq!(si(1234.0), "1.2k");
        assert_eq!(si(3_200_000.0), "3.2M");
        assert_eq!(si(7.5e9), "7.5G");
        assert_eq!(sparkline(&[0.0, 1.0, 4.0, 8.0]), " ▁▄█");
        assert_eq!(sparkline(&[0.0, 0.0]), "  ");
        assert_eq!(sparkline(&[]), "");
    }
}
