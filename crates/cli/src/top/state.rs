//! What `top` shows, as plain data: rates computed from successive counter
//! samples, a short history per rule, the heaviest dropped sources, losses,
//! and the view settings the keys change (sort, filter, pause, help,
//! scroll). No terminal here: every function is pure and tested.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use xdpwall_dataplane::xdperr::XdpErrors;

use super::topk::Entry;

/// Points of history kept per rule (the widest sparkline that fits).
pub const HISTORY: usize = 64;

/// One rule's counters in a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSample {
    /// Rule name (`(default)` for the default action).
    pub name: String,
    /// Action name.
    pub action: String,
    /// Packets so far.
    pub packets: u64,
    /// Bytes so far.
    pub bytes: u64,
}

/// The instance's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// Rules in rule order, then the default action.
    pub rules: Vec<RuleSample>,
    /// Malformed packets (all reasons).
    pub malformed: u64,
    /// Rule events the program emitted.
    pub events_produced: u64,
    /// Rule events lost (buffer full).
    pub events_lost: u64,
    /// Tap records emitted (all tappers).
    pub tap_produced: u64,
    /// Tap records lost (buffer full).
    pub tap_lost: u64,
    /// XDP errors the kernel reported.
    pub xdp_errors: XdpErrors,
    /// Whether tracepoints count them now (None: unknown).
    pub xdp_counting: Option<bool>,
}

/// A rate history of fixed capacity (oldest dropped first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    points: VecDeque<f64>,
}

impl History {
    /// Appends a point, dropping the oldest beyond [`HISTORY`].
    pub fn push(&mut self, v: f64) {
        if self.points.len() == HISTORY {
            self.points.pop_front();
        }
        self.points.push_back(v);
    }

    /// The last `n` points, oldest first.
    #[must_use]
    pub fn last(&self, n: usize) -> Vec<f64> {
        let skip = self.points.len().saturating_sub(n);
        self.points.iter().skip(skip).copied().collect()
    }

    /// Number of points.
    #[cfg(test)]
    #[must_use]
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether there are none.
    #[cfg(test)]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// One row of the rules table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Rule name.
    pub name: String,
    /// Action name.
    pub action: String,
    /// Position in rule order (ties of the sort keep it).
    pub order: usize,
    /// Packets so far.
    pub packets: u64,
    /// Bytes so far.
    pub bytes: u64,
    /// Packets per second over the last interval.
    pub pps: f64,
    /// Bytes per second over the last interval.
    pub bps: f64,
    /// Packets-per-second history.
    pub history: History,
}

/// A counter's rate between two samples `dt` seconds apart. A counter that
/// went backwards (a reload that started it afresh) gives 0, not a wrap.
#[must_use]
pub fn rate(before: u64, now: u64, dt: f64) -> f64 {
    if dt <= 0.0 || now < before {
        0.0
    } else {
        (now - before) as f64 / dt
    }
}

/// A heavy source of dropped packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Source address (`None`: frames without an IP header).
    pub addr: Option<IpAddr>,
    /// Dropped packets tapped from it (since `top` started).
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Most `packets` may overcount (space-saving error).
    pub error: u64,
    /// The rule that dropped its last packet (`None`: the default action
    /// or the malformed policy).
    pub rule: Option<String>,
}

/// State of the tap feeding the sources table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapStatus {
    /// Tapping dropped packets.
    On,
    /// Another capture/top holds the tap: no sources until it is free.
    Busy,
    /// The tap could not be opened (the reason).
    Failed(String),
}

/// Counters and rates: everything that pausing freezes.
#[derive(Debug, Clone, PartialEq)]
pub struct Data {
    /// Rules (then the default action), in rule order.
    pub rows: Vec<Row>,
    /// The latest sample.
    pub last: Sample,
    /// The first sample (baseline of "since top started").
    pub first: Option<Sample>,
    /// Heaviest sources of dropped packets, heaviest first.
    pub sources: Vec<Source>,
    /// Dropped packets the tap delivered since top started.
    pub tapped: u64,
    /// Distinct sources tracked (at most the table's capacity).
    pub tracked: usize,
    /// The tap.
    pub tap: TapStatus,
    last_t: Option<f64>,
}

impl Default for Data {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            last: Sample::default(),
            first: None,
            sources: Vec::new(),
            tapped: 0,
            tracked: 0,
            tap: TapStatus::On,
            last_t: None,
        }
    }
}

impl Data {
    /// Takes a sample made at `t` seconds (any monotonic origin): rates
    /// over the time since the previous sample, one history point per rule.
    /// Rules follow their names across reloads; gone rules disappear.
    pub fn sample(&mut self, t: f64, s: Sample) {
        let dt = self.last_t.map(|p| t - p);
        let mut old: HashMap<String, Row> =
            self.rows.drain(..).map(|r| (r.name.clone(), r)).collect();
        for (order, r) in s.rules.iter().enumerate() {
            let mut row = old.remove(&r.name).unwrap_or_else(|| Row {
                name: r.name.clone(),
                action: r.action.clone(),
                order,
                packets: r.packets,
                bytes: r.bytes,
                pps: 0.0,
                bps: 0.0,
                history: History::default(),
            });
            if let Some(dt) = dt {
                row.pps = rate(row.packets, r.packets, dt);
                row.bps = rate(row.bytes, r.bytes, dt);
                row.history.push(row.pps);
            }
            row.order = order;
            row.action.clone_from(&r.action);
            row.packets = r.packets;
            row.bytes = r.bytes;
            self.rows.push(row);
        }
        if self.first.is_none() {
            self.first = Some(s.clone());
        }
        self.last = s;
        self.last_t = Some(t);
    }

    /// Replaces the sources table with the summary's heaviest entries;
    /// `names` resolves their rule tags.
    pub fn set_sources(
        &mut self,
        top: Vec<Entry<Option<IpAddr>>>,
        tapped: u64,
        tracked: usize,
        names: &[String],
    ) {
        self.sources = top
            .into_iter()
            .map(|e| Source {
                addr: e.key,
                packets: e.packets,
                bytes: e.bytes,
                error: e.error,
                rule: names.get(e.tag as usize).cloned(),
            })
            .collect();
        self.tapped = tapped;
        self.tracked = tracked;
    }

    /// A counter of the latest sample minus its value in the first.
    #[must_use]
    pub fn since_start(&self, f: impl Fn(&Sample) -> u64) -> u64 {
        let base = self.first.as_ref().map_or(0, &f);
        f(&self.last).saturating_sub(base)
    }
}

/// Sort orders of the rules table, in the order `s` cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Packets per second, highest first.
    Pps,
    /// Bytes per second, highest first.
    Bps,
    /// Rule name, A to Z.
    Name,
    /// Packets so far, highest first.
    Total,
}

impl SortKey {
    /// The next order.
    #[must_use]
    pub fn next(self) -> Self {
        match self {
            SortKey::Pps => SortKey::Bps,
            SortKey::Bps => SortKey::Name,
            SortKey::Name => SortKey::Total,
            SortKey::Total => SortKey::Pps,
        }
    }

    /// As shown in the title.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Pps => "pkt/s",
            SortKey::Bps => "bytes/s",
            SortKey::Name => "name",
            SortKey::Total => "total",
        }
    }
}

/// A key press, as far as `top` cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Escape.
    Esc,
    /// Enter.
    Enter,
    /// Backspace.
    Backspace,
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Ctrl-C (raw mode turns it into a key).
    CtrlC,
}

/// What the loop does after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going (redraw).
    Continue,
    /// Leave `top`.
    Quit,
}

/// View settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ui {
    /// Rules table order.
    pub sort: SortKey,
    /// Rule-name substring filter (case-insensitive; empty: all).
    pub filter: String,
    /// The filter being typed after `/`, if any.
    pub editing: Option<String>,
    /// Display frozen.
    pub paused: bool,
    /// The help overlay is shown.
    pub help: bool,
    /// First rules-table row shown.
    pub scroll: usize,
}

impl Default for Ui {
    fn default() -> Self {
        Self {
            sort: SortKey::Pps,
            filter: String::new(),
            editing: None,
            paused: false,
            help: false,
            scroll: 0,
        }
    }
}

/// Facts about what is watched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// Interface.
    pub iface: String,
    /// XDP mode.
    pub mode: String,
    /// Program id.
    pub prog_id: u32,
    /// Sampling interval, ms.
    pub interval_ms: u64,
}

/// The whole state of `top`.
#[derive(Debug, Clone, Default)]
pub struct Top {
    /// What is watched.
    pub head: Head,
    /// View settings.
    pub ui: Ui,
    data: Data,
    frozen: Option<Data>,
}

impl Top {
    /// A fresh state.
    #[must_use]
    pub fn new(head: Head) -> Self {
        Self {
            head,
            ..Self::default()
        }
    }

    /// The live data (always updated, also while paused).
    pub fn data_mut(&mut self) -> &mut Data {
        &mut self.data
    }

    /// The data on screen: frozen while paused.
    #[must_use]
    pub fn shown(&self) -> &Data {
        self.frozen.as_ref().unwrap_or(&self.data)
    }

    /// The rows of the rules table: filtered, then sorted.
    #[must_use]
    pub fn visible_rows(&self) -> Vec<&Row> {
        let needle = self.ui.filter.to_lowercase();
        let mut rows: Vec<&Row> = self
            .shown()
            .rows
            .iter()
            .filter(|r| needle.is_empty() || r.name.to_lowercase().contains(&needle))
            .collect();
        let desc = |a: f64, b: f64| b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal);
        rows.sort_by(|a, b| {
            match self.ui.sort {
                SortKey::Pps => desc(a.pps, b.pps),
                SortKey::Bps => desc(a.bps, b.bps),
                SortKey::Name => a.name.cmp(&b.name),
                SortKey::Total => b.packets.cmp(&a.packets),
            }
            .then(a.order.cmp(&b.order))
        });
        rows
    }

    /// Handles a key.
    pub fn on_key(&mut self, key: Key) -> Flow {
        if key == Key::CtrlC {
            return Flow::Quit;
        }
        if let Some(text) = &mut self.ui.editing {
            match key {
                Key::Char(c) => text.push(c),
                Key::Backspace => {
                    text.pop();
                }
                Key::Enter => {
                    self.ui.filter = std::mem::take(text);
                    self.ui.editing = None;
                    self.ui.scroll = 0;
                }
                Key::Esc => self.ui.editing = None,
                _ => {}
            }
            return Flow::Continue;
        }
        if self.ui.help {
            // Any key closes the help; q still quits.
            self.ui.help = false;
            return if key == Key::Char('q') {
                Flow::Quit
            } else {
                Flow::Continue
            };
        }
        match key {
            Key::Char('q') | Key::Esc => return Flow::Quit,
            Key::Char('s') => self.ui.sort = self.ui.sort.next(),
            Key::Char('/') => self.ui.editing = Some(self.ui.filter.clone()),
            Key::Char('p') => {
                self.ui.paused = !self.ui.paused;
                self.frozen = self.ui.paused.then(|| self.data.clone());
            }
            Key::Char('?' | 'h') => self.ui.help = true,
            Key::Up | Key::Char('k') => self.ui.scroll = self.ui.scroll.saturating_sub(1),
            Key::Down | Key::Char('j') => self.ui.scroll += 1,
            Key::PageUp => self.ui.scroll = self.ui.scroll.saturating_sub(10),
            Key::PageDown => self.ui.scroll += 10,
            _ => {}
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, packets: u64, bytes: u64) -> RuleSample {
        RuleSample {
            name: name.into(),
            action: "drop".into(),
            packets,
            bytes,
        }
    }

    fn sample(rules: Vec<RuleSample>) -> Sample {
        Sample {
            rules,
            ..Sample::default()
        }
    }

    #[test]
    fn rates_come_from_counter_differences_over_time() {
        assert_eq!(rate(100, 300, 2.0), 100.0);
        assert_eq!(rate(100, 100, 1.0), 0.0);
        // A counter that restarted is no wrap-around.
        assert_eq!(rate(500, 10, 1.0), 0.0);
        assert_eq!(rate(0, 10, 0.0), 0.0);

        let mut d = Data::default();
        d.sample(10.0, sample(vec![rule("a", 1000, 64_000)]));
        assert_eq!(d.rows[0].pps, 0.0, "no rate from one sample");
        assert!(d.rows[0].history.is_empty());
        d.sample(10.5, sample(vec![rule("a", 1500, 96_000)]));
        assert_eq!(d.rows[0].pps, 1000.0);
        assert_eq!(d.rows[0].bps, 64_000.0);
        assert_eq!(d.rows[0].history.last(10), vec![1000.0]);
        d.sample(11.5, sample(vec![rule("a", 1500, 96_000)]));
        assert_eq!(d.rows[0].pps, 0.0);
        assert_eq!(d.rows[0].history.last(10), vec![1000.0, 0.0]);
    }

    #[test]
    fn rules_follow_their_names_across_a_reload() {
        let mut d = Data::default();
        d.sample(0.0, sample(vec![rule("a", 10, 1), rule("b", 20, 2)]));
        d.sample(1.0, sample(vec![rule("a", 20, 2), rule("b", 40, 4)]));
        // Reload: b moved first, a is gone, c is new.
        d.sample(2.0, sample(vec![rule("b", 70, 7), rule("c", 5, 1)]));
        let names: Vec<&str> = d.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["b", "c"]);
        assert_eq!(d.rows[0].pps, 30.0);
        assert_eq!(d.rows[0].history.len(), 2);
        assert_eq!(d.rows[1].pps, 0.0, "a new rule has no rate yet");
    }

    #[test]
    fn history_keeps_the_latest_points() {
        let mut h = History::default();
        for i in 0..(HISTORY + 10) {
            h.push(i as f64);
        }
        assert_eq!(h.len(), HISTORY);
        assert_eq!(h.last(3), vec![71.0, 72.0, 73.0]);
        assert_eq!(h.last(1000).len(), HISTORY);
        assert_eq!(h.last(1000)[0], 10.0);
    }

    fn top_with(rows: &[(&str, u64, u64)]) -> Top {
        let mut t = Top::new(Head::default());
        t.data_mut().sample(
            0.0,
            sample(rows.iter().map(|(n, _, _)| rule(n, 0, 0)).collect()),
        );
        t.data_mut().sample(
            1.0,
            sample(rows.iter().map(|(n, p, b)| rule(n, *p, *b)).collect()),
        );
        t
    }

    fn names(t: &Top) -> Vec<String> {
        t.visible_rows().iter().map(|r| r.name.clone()).collect()
    }

    #[test]
    fn s_cycles_the_sort_orders() {
        let mut t = top_with(&[("web", 10, 9000), ("dns", 50, 3000), ("ssh", 30, 1000)]);
        assert_eq!(names(&t), ["dns", "ssh", "web"], "pkt/s");
        t.on_key(Key::Char('s'));
        assert_eq!(t.ui.sort, SortKey::Bps);
        assert_eq!(names(&t), ["web", "dns", "ssh"], "bytes/s");
        t.on_key(Key::Char('s'));
        assert_eq!(names(&t), ["dns", "ssh", "web"], "name");
        t.on_key(Key::Char('s'));
        assert_eq!(t.ui.sort, SortKey::Total);
        assert_eq!(names(&t), ["dns", "ssh", "web"], "total");
        t.on_key(Key::Char('s'));
        assert_eq!(t.ui.sort, SortKey::Pps);
    }

    #[test]
    fn slash_edits_a_case_insensitive_name_filter() {
        let mut t = top_with(&[("ssh-drop", 1, 1), ("dns", 2, 2), ("SSH-admins", 3, 3)]);
        t.on_key(Key::Char('/'));
        for c in "sshx".chars() {
            assert_eq!(t.on_key(Key::Char(c)), Flow::Continue, "typing never quits");
        }
        t.on_key(Key::Backspace);
        assert_eq!(names(&t).len(), 3, "not applied before Enter");
        t.on_key(Key::Enter);
        assert_eq!(t.ui.filter, "ssh");
        assert_eq!(names(&t), ["SSH-admins", "ssh-drop"]);
        // Esc while editing cancels the edit, not top.
        t.on_key(Key::Char('/'));
        t.on_key(Key::Char('z'));
        assert_eq!(t.on_key(Key::Esc), Flow::Continue);
        assert_eq!(t.ui.filter, "ssh");
        // An empty filter shows everything again.
        t.on_key(Key::Char('/'));
        for _ in 0..3 {
            t.on_key(Key::Backspace);
        }
        t.on_key(Key::Enter);
        assert_eq!(names(&t).len(), 3);
    }

    #[test]
    fn p_freezes_the_display_while_data_goes_on() {
        let mut t = top_with(&[("a", 10, 10)]);
        t.on_key(Key::Char('p'));
        assert!(t.ui.paused);
        t.data_mut().sample(2.0, sample(vec![rule("a", 110, 110)]));
        assert_eq!(t.shown().rows[0].pps, 10.0, "frozen");
        t.on_key(Key::Char('p'));
        assert_eq!(t.shown().rows[0].pps, 100.0, "live again");
    }

    #[test]
    fn quit_keys_and_help() {
        let mut t = Top::default();
        assert_eq!(t.on_key(Key::Char('?')), Flow::Continue);
        assert!(t.ui.help);
        assert_eq!(t.on_key(Key::Char('x')), Flow::Continue);
        assert!(!t.ui.help, "any key closes the help");
        assert_eq!(t.on_key(Key::Char('q')), Flow::Quit);
        assert_eq!(t.on_key(Key::Esc), Flow::Quit);
        assert_eq!(t.on_key(Key::CtrlC), Flow::Quit);
        t.on_key(Key::Char('/'));
        assert_eq!(
            t.on_key(Key::Char('q')),
            Flow::Continue,
            "q is text in the filter"
        );
        assert_eq!(t.on_key(Key::CtrlC), Flow::Quit);
    }

    #[test]
    fn sources_resolve_rule_tags_and_losses_count_from_the_start() {
        let mut d = Data::default();
        let first = Sample {
            tap_lost: 5,
            ..Sample::default()
        };
        d.sample(0.0, first);
        d.sample(
            1.0,
            Sample {
                tap_lost: 12,
                ..Sample::default()
            },
        );
        assert_eq!(d.since_start(|s| s.tap_lost), 7);
        let names = vec!["drop-bad".to_string()];
        let e = |tag| Entry {
            key: Some(IpAddr::from([198, 51, 100, 7])),
            packets: 9,
            bytes: 900,
            error: 0,
            tag,
        };
        d.set_sources(vec![e(0), e(u32::MAX)], 18, 2, &names);
        assert_eq!(d.sources[0].rule.as_deref(), Some("drop-bad"));
        assert_eq!(d.sources[1].rule, None, "the default action");
        assert_eq!((d.tapped, d.tracked), (18, 2));
    }
}
