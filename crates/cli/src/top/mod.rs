//! `xdpwall top`: a live terminal view of a running instance — per-rule
//! packet and byte rates with a short history, the heaviest sources of
//! dropped traffic, event and tap losses, XDP errors and the XDP mode.
//!
//! * [`state`] — pure state: rates from counter samples, history, sorting,
//!   filtering, keys;
//! * [`topk`] — the bounded heavy-hitter table of dropped sources;
//! * [`sources`] — the sink feeding it from the tap's events;
//! * [`render`] — ratatui widgets;
//! * [`term`] — entering and restoring the terminal;
//! * [`input`] — keys, and noticing a terminal that went away;
//! * this module — finding the instance (like `stats`) and the loop.
//!
//! The sources come from the instance's capture tap (as `xdpwall capture`
//! uses it), restricted to dropped packets with a short snaplen, so they
//! are seen even when no rule logs. The tap is a lease: `top` renews it each
//! second and turns it off on exit; a killed `top` stops costing the data
//! plane within seconds.

mod input;
mod render;
mod sources;
mod state;
mod term;
mod topk;

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGWINCH};
use signal_hook::iterator::Signals;
use xdpwall_dataplane::attach;
use xdpwall_dataplane::tap::{self, TapLease, TapSpec};
use xdpwall_dataplane::{stats, xdperr, Instance};
use xdpwall_events::{Consumer, ConsumerOptions, Poll};
use xdpwall_rules::compile::abi;

use crate::event_out::EventWriter;
use state::{Flow, Head, RuleSample, Sample, TapStatus, Top};

/// Options of `top`.
pub struct TopArgs {
    /// `--iface`.
    pub iface: Option<String>,
    /// `--interval` in ms.
    pub interval_ms: u64,
    /// `--force`: take the tap over from another capture/top.
    pub force: bool,
}

/// Packet bytes per tapped drop: Ethernet, two VLAN tags and an IPv6
/// header (62 bytes) fit; the source address is all `top` reads.
const TAP_SNAPLEN: u32 = 64;
/// Rows of the sources table.
const SOURCES_SHOWN: usize = 5;

/// Runs the live view until q/Esc/Ctrl-C or SIGINT/SIGTERM/SIGHUP.
pub fn top(args: &TopArgs) -> Result<()> {
    if !(100..=60_000).contains(&args.interval_ms) {
        return Err(crate::exit::usage(format!(
            "--interval: {} ms is out of range; use 100 to 60000",
            args.interval_ms
        )));
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(crate::exit::usage(
            "top draws on a terminal (stdin and stdout must be one); for scripts use `xdpwall stats --json`",
        ));
    }
    // Everything that can fail on bad input fails before the screen changes.
    let iface = crate::cmd::stats::pick_iface(args.iface.clone())?;
    let ifindex = xdpwall_dataplane::instance::ifindex(&iface)?;
    let mut inst = attach::find(&iface)?;
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGWINCH])
        .context("cannot install signal handlers")?;
    let colour = std::env::var_os("NO_COLOR").is_none();
    let mut state = Top::new(Head {
        iface: iface.clone(),
        interval_ms: args.interval_ms,
        ..Head::default()
    });
    let mut screen = term::Screen::enter().context("cannot set up the terminal")?;
    let started = Instant::now();
    let sources = Arc::new(Mutex::new(sources::Sources::default()));
    loop {
        let mut w = Watch {
            inst: &inst,
            iface: &iface,
            ifindex,
            args,
            started,
            colour,
            sources: &sources,
        };
        match w.run(&mut state, &mut screen, &mut signals)? {
            Next::Quit => return Ok(()),
            Next::Replaced(id) => {
                inst = Instance::from_prog_id(id, &iface)
                    .with_context(|| format!("cannot open the new program on {iface}"))?;
            }
            Next::Gone(why) => {
                drop(screen);
                anyhow::bail!("{why}");
            }
        }
    }
}

/// Why one instance's watch ended.
enum Next {
    /// The user quit.
    Quit,
    /// `run` reloaded or was replaced: this program id is xdpwall's now.
    Replaced(u32),
    /// xdpwall no longer runs on the interface.
    Gone(String),
}

/// Watching one program (a reload starts a new watch).
struct Watch<'a> {
    inst: &'a Instance,
    iface: &'a str,
    ifindex: u32,
    args: &'a TopArgs,
    started: Instant,
    colour: bool,
    /// Dropped sources since top started: kept across reloads (sources
    /// are keyed by address and rule name, not by program).
    sources: &'a Arc<Mutex<sources::Sources>>,
}

impl Watch<'_> {
    fn run(
        &mut self,
        state: &mut Top,
        screen: &mut term::Screen,
        signals: &mut Signals,
    ) -> Result<Next> {
        let inst = self.inst;
        state.head.prog_id = inst.prog_id;
        state.head.mode = crate::cmd::stats::mode_name(inst).to_string();
        let shared = self.sources;
        let names = stats::rule_names(inst).unwrap_or_default();
        let writer = EventWriter::new(Box::new(sources::SourceSink(Arc::clone(shared))), names);
        let opts = ConsumerOptions {
            poll: Poll::Epoll,
            timeout: Duration::from_millis(10),
            buffer: u64::from(abi::TAP_RING_SIZE),
            perf_per_wakeup: 1,
        };
        // The consumer is open before the tap goes on.
        let consumer = Consumer::tap(inst, abi::TRANSPORT_RINGBUF, opts, move |r| {
            writer.borrow_mut().write(r)
        });
        let consumer = match consumer {
            Ok(c) => Some(c),
            Err(e) => {
                state.data_mut().tap = TapStatus::Failed(e.to_string());
                None
            }
        };
        let spec = TapSpec {
            snaplen: TAP_SNAPLEN,
            transport: abi::TRANSPORT_RINGBUF,
            flags: abi::TAP_DROPS,
        };
        let mut lease = None;
        let mut force = self.args.force;
        let interval = Duration::from_millis(self.args.interval_ms);
        let mut next_tick = Instant::now();
        let mut next_renew = Instant::now();
        let mut dirty = true;
        let mut counting = None;
        let mut next_counting_check = Instant::now();
        loop {
            if consumer.is_some() && lease.is_none() && Instant::now() >= next_renew {
                // (Re)try the tap: free at start, or when another holder left.
                match TapLease::acquire(inst, self.iface, spec, force) {
                    Ok(l) => {
                        lease = Some(l);
                        state.data_mut().tap = TapStatus::On;
                    }
                    Err(xdpwall_dataplane::Error::TapBusy { .. }) => {
                        state.data_mut().tap = TapStatus::Busy;
                    }
                    Err(e) => state.data_mut().tap = TapStatus::Failed(e.to_string()),
                }
                force = false;
                next_renew = Instant::now() + tap::RENEW_EVERY;
                dirty = true;
            }
            // Wait for tapped packets, or for keys when nothing is tapped.
            let wait = match (&consumer, &lease) {
                (Some(c), Some(_)) => {
                    c.poll()?;
                    Duration::ZERO
                }
                _ => Duration::from_millis(20),
            };
            match input::wait(wait).context("cannot read the terminal")? {
                input::Input::Gone => return Ok(Next::Quit),
                input::Input::Keys(keys) => {
                    for key in keys {
                        if state.on_key(key) == Flow::Quit {
                            return Ok(Next::Quit);
                        }
                        dirty = true;
                    }
                }
            }
            for sig in signals.pending() {
                if sig == SIGWINCH {
                    dirty = true; // the next draw resizes
                } else {
                    return Ok(Next::Quit);
                }
            }
            let now = Instant::now();
            if let Some(l) = lease.as_mut() {
                if now >= next_renew {
                    next_renew = now + tap::RENEW_EVERY;
                    if l.renew().is_err() {
                        // Someone forced the tap over: wait for it to be free.
                        lease = None;
                        state.data_mut().tap = TapStatus::Busy;
                    }
                }
            }
            if now >= next_tick {
                next_tick = (next_tick + interval).max(now);
                match attach::current(self.ifindex)? {
                    Some(c) if c.prog_id == inst.prog_id => {}
                    Some(c) if c.is_ours() => return Ok(Next::Replaced(c.prog_id)),
                    _ => {
                        return Ok(Next::Gone(format!(
                            "xdpwall stopped running on {} (program id {} was detached)",
                            self.iface, inst.prog_id
                        )))
                    }
                }
                if now >= next_counting_check {
                    // Walks every program of the machine: not every tick.
                    counting = xdperr::counting_programs(inst).ok().map(|p| !p.is_empty());
                    // Soon again while nothing counts: `run` may be starting.
                    let again = if counting == Some(true) { 5 } else { 1 };
                    next_counting_check = now + Duration::from_secs(again);
                }
                let t = self.started.elapsed().as_secs_f64();
                let mut sample = snapshot(inst)?;
                sample.xdp_counting = counting;
                state.data_mut().sample(t, sample);
                if let Ok(s) = shared.lock() {
                    let (top, total, tracked, names) = s.snapshot(SOURCES_SHOWN);
                    state.data_mut().set_sources(top, total, tracked, &names);
                }
                dirty = true;
            }
            if dirty {
                let colour = self.colour;
                screen
                    .terminal
                    .draw(|f| render::draw(f, state, colour))
                    .context("cannot draw")?;
                dirty = false;
            }
        }
    }
}

/// The counters `top` shows, read once.
fn snapshot(inst: &Instance) -> Result<Sample> {
    let s = stats::read(inst).context("cannot read the counters")?;
    let k = stats::events(inst).context("cannot read the event counters")?;
    let x = xdperr::read(inst).context("cannot read the XDP error counters")?;
    let mut rules: Vec<RuleSample> = s
        .rules
        .iter()
        .map(|r| RuleSample {
            name: r.name.clone(),
            action: r.action.to_string(),
            packets: r.counter.packets,
            bytes: r.counter.bytes,
        })
        .collect();
    rules.push(RuleSample {
        name: "(default)".into(),
        action: s.default_action.to_string(),
        packets: s.default.packets,
        bytes: s.default.bytes,
    });
    Ok(Sample {
        rules,
        malformed: s.malformed.iter().map(|(_, c)| c.packets).sum(),
        events_produced: k.produced,
        events_lost: k.lost,
        tap_produced: k.tap_produced,
        tap_lost: k.tap_lost,
        xdp_errors: x,
        xdp_counting: None,
    })
}
