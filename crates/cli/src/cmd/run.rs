//! `xdpwall run CONFIG`: attach and stay in the foreground; read events,
//! reload on SIGHUP, detach on SIGINT/SIGTERM.

use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use xdpwall_dataplane::attach::{self, AttachMode, Attached};
use xdpwall_dataplane::instance::VERIFIER_LIMIT;
use xdpwall_dataplane::load::{load, load_next, LoadOptions};
use xdpwall_dataplane::types::xw_info;
use xdpwall_dataplane::xdperr::{self, XdpErrorCounter};
use xdpwall_dataplane::{stats, Instance};
use xdpwall_events::{Consumer, ConsumerOptions, Poll};
use xdpwall_rules::compile::{abi, Compiled};
use xdpwall_rules::{Config, Mode, Verdict};
use xdpwall_sinks::SinkKind;

use crate::config::{load_compiled, load_compiled_timed};
use crate::control;
use crate::event_out::EventWriter;
use crate::output::{stats_table, EventCounts, Header};

/// Options of `run`.
pub struct RunArgs {
    /// Config path.
    pub config: PathBuf,
    /// `--iface`.
    pub iface: Option<String>,
    /// `--mode`.
    pub mode: Option<Mode>,
    /// `--force`.
    pub force: bool,
    /// `--interval` seconds.
    pub interval: u64,
    /// `--events OUT`.
    pub events: Option<String>,
    /// `--busy-poll`.
    pub busy_poll: bool,
    /// `--metrics ADDR`.
    pub metrics: Option<String>,
}

fn info(cfg: &Config, c: &Compiled, ifindex: u32, a: &Attached, path: &Path) -> xw_info {
    let v = |v: Verdict| if v == Verdict::Drop { 1 } else { 2 };
    let mut i = xw_info {
        magic: 0x7877_616c_6c30_3031,
        pid: u64::from(std::process::id()),
        loaded_unix_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        mode: a.mode.code(),
        transport: c.events.transport,
        default_action: v(cfg.xdp.default),
        malformed_action: v(cfg.xdp.malformed),
        nrules: u32::try_from(c.rules.len()).unwrap_or(u32::MAX),
        ifindex,
        ..Default::default()
    };
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let room = i.config.len() - 1;
    for (d, &b) in i
        .config
        .iter_mut()
        .zip(abs.as_os_str().as_encoded_bytes().iter().take(room))
    {
        *d = b as i8;
    }
    i
}

/// Loads the program for `c`: as the successor of `prev` when there is one
/// (counters continue by rule name), else fresh. A predecessor from an
/// incompatible version only costs its counters, and says so.
fn load_after(c: &Compiled, prev: Option<&Instance>) -> Result<Instance> {
    let Some(prev) = prev else {
        return Ok(load(c, LoadOptions::default())?);
    };
    match load_next(c, LoadOptions::default(), prev) {
        Err(e @ xdpwall_dataplane::Error::Incompatible { .. }) => {
            log::warn!("{e}; counters start from zero");
            Ok(load(c, LoadOptions::default())?)
        }
        r => Ok(r?),
    }
}

/// A warning when a rule set's shape took the verifier past nine tenths of
/// its limit: the next field or feature a user adds may not load.
fn verifier_warning(verified: u32) -> Option<String> {
    (u64::from(verified) * 10 > u64::from(VERIFIER_LIMIT) * 9).then(|| {
        format!(
            "the verifier processed {verified} of its {VERIFIER_LIMIT} instructions for this \
             rule set's shape: a rule set using more fields or features may not load"
        )
    })
}

/// Loads, attaches and writes the instance facts. A running xdpwall on
/// `iface` (a previous `run`, perhaps killed) is taken over atomically and
/// its counters continue.
fn start(
    args: &RunArgs,
    iface: &str,
    cfg: &Config,
    c: &Compiled,
) -> Result<(Instance, Attached, u64)> {
    let prev = match attach::find(iface) {
        Ok(p) => Some(p),
        // An xdpwall of another build, whose maps this one cannot open: it
        // is replaced all the same (atomically), and what that costs is said.
        Err(e @ xdpwall_dataplane::Error::MissingMap { .. }) => {
            log::warn!("{e}; replacing it: its counters start from zero");
            None
        }
        Err(_) => None,
    };
    let inst = load_after(c, prev.as_ref())?;
    // Events the predecessor's readers delivered, so produced = delivered +
    // lost keeps holding across the takeover.
    let delivered = prev
        .as_ref()
        .and_then(|p| p.info().ok())
        .map_or(0, |i| i.delivered);
    let mode = args.mode.unwrap_or(cfg.xdp.mode);
    let attached = attach::attach(&inst, iface, mode, args.force)?;
    let idx = xdpwall_dataplane::instance::ifindex(iface)?;
    let mut facts = info(cfg, c, idx, &attached, &args.config);
    facts.delivered = delivered;
    inst.set_info(&facts)?;
    Ok((inst, attached, delivered))
}

/// Rule names by id.
fn rule_names(c: &Compiled) -> Vec<String> {
    c.rules.iter().map(|r| r.name.clone()).collect()
}

/// Transport name as shown to users.
pub fn transport_name(t: u32) -> &'static str {
    if t == abi::TRANSPORT_PERFBUF {
        "perfbuf"
    } else {
        "ringbuf"
    }
}

fn announce(iface: &str, inst: &Instance, attached: &Attached, nrules: usize) {
    if let Some(w) = &attached.warning {
        log::warn!("{w}");
    }
    match &attached.replaced {
        Some((old, name)) if name == xdpwall_dataplane::instance::PROG_NAME => {
            log::info!("took over from xdpwall program id {old} (atomic replace)");
        }
        Some((old, name)) => {
            log::info!(
                "replaced XDP program `{name}` (id {old}) as --force asked (atomic replace)"
            );
        }
        None => {}
    }
    log::info!(
        "attached to {iface} ({} mode, program id {}), {nrules} rules; Ctrl-C detaches",
        attached.mode.name(),
        inst.prog_id,
    );
}

/// Runs until SIGINT/SIGTERM; SIGHUP reloads.
pub fn run(args: &RunArgs) -> Result<()> {
    let (cfg, compiled, timings) = load_compiled_timed(&args.config)?;
    crate::config::check_redirect_targets(&cfg)?;
    let iface = args
        .iface
        .clone()
        .or_else(|| cfg.xdp.interface.clone())
        .ok_or_else(|| crate::exit::usage("no interface: pass --iface or set [xdp] interface"))?;
    // Rules that log need a reader: without --events, terminal lines.
    let events_arg = args
        .events
        .as_deref()
        .or(compiled.events.enabled.then_some("-"));
    let events_kind = events_arg
        .map(xdpwall_sinks::parse_events_arg)
        .transpose()
        .map_err(crate::exit::usage)?;
    let events_to_stdout = matches!(events_kind, Some(SinkKind::Terminal | SinkKind::Json));
    // Open the output before attaching: a bad path changes nothing.
    let writer = match &events_kind {
        Some(k) => {
            let sink = xdpwall_sinks::open(k, std::io::stdout().is_terminal())
                .map_err(|e| crate::exit::usage(format!("cannot open the event output: {e}")))?;
            Some(EventWriter::new(sink, rule_names(&compiled)))
        }
        None => None,
    };
    let metrics_addr = args
        .metrics
        .as_deref()
        .map(crate::metrics_server::parse_addr)
        .transpose()
        .map_err(crate::exit::usage)?;
    // Register before attaching so a signal during start-up is not lost.
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("cannot install signal handlers")?;

    let t = Instant::now();
    let (mut inst, attached, delivered_before) = start(args, &iface, &cfg, &compiled)?;
    let set_entries: usize = cfg.sets.values().map(|s| s.entries.len()).sum();
    // How close the rule set's shape took the verifier to its limit (the
    // figure is missing only on kernels before 5.16).
    let verified = inst.verified_insns().unwrap_or(0);
    let nodes = compiled.src4_nodes.len() + compiled.dst4_nodes.len();
    let lone = compiled.src4_nodes.lone.len() + compiled.dst4_nodes.lone.len();
    log::info!(
        "{} rules, {} set entries -> {} classes, {} trie entries ({} IPv4 trie nodes, {} lone /16s, \
         {} KiB); parse {} ms, compile {} ms, load+attach {} ms (verifier: {} of its {} instructions)",
        compiled.rules.len(),
        set_entries,
        compiled.classes.len(),
        compiled.src4.len() + compiled.dst4.len() + compiled.src6.len() + compiled.dst6.len(),
        nodes,
        lone,
        (nodes * std::mem::size_of::<xdpwall_rules::compile::Node4>()
            + lone * std::mem::size_of::<xdpwall_rules::compile::Lone4>())
            / 1024,
        timings.parse.as_millis(),
        timings.compile.as_millis(),
        t.elapsed().as_millis(),
        verified,
        VERIFIER_LIMIT
    );
    if let Some(w) = verifier_warning(verified) {
        log::warn!("{w}");
    }
    // Before announcing: once "attached" is printed, `reload` must work.
    let control = match control::Server::bind(&iface) {
        Ok(s) => Some(s),
        Err(e) => {
            log::warn!("{e:#}; `xdpwall reload` will not reach this process (SIGHUP still works)");
            None
        }
    };
    announce(&iface, &inst, &attached, compiled.rules.len());
    let ifindex = xdpwall_dataplane::instance::ifindex(&iface)?;
    let mut _xdp_errors = count_xdp_errors(&inst, ifindex);
    crate::service::ready(&format!(
        "filtering {iface}: {} rules (program id {})",
        compiled.rules.len(),
        inst.prog_id
    ));
    let counters = std::sync::Arc::new(crate::metrics_server::RunCounters::default());
    let _metrics = match metrics_addr {
        Some(addr) => {
            let server = crate::metrics_server::MetricsServer::start(
                addr,
                iface.clone(),
                std::sync::Arc::clone(&counters),
            )?;
            log::info!("metrics at http://{}/metrics", server.addr());
            Some(server)
        }
        None => None,
    };
    if events_kind.is_some() && !compiled.events.enabled {
        log::warn!("--events given but no rule has `log` or `sample`: no events will be produced");
    }

    let transport = compiled.events.transport;
    // The session keeps the compiled tables (for in-place set changes).
    let events_enabled = compiled.events.enabled;
    let mut session = Session {
        args,
        iface: &iface,
        mode: attached.mode,
        transport,
        buffer: cfg.events.buffer,
        perf_per_wakeup: match compiled.events.wakeup_mode {
            abi::WAKE_EVERY => 1,
            abi::WAKE_BATCH => compiled.events.wakeup_batch,
            _ => 64,
        },
        delivered: delivered_before,
        counters: &counters,
        control,
        live: Some(compiled),
    };
    loop {
        match session.serve(&inst, writer.as_ref(), &mut signals)? {
            Next::Exit => break,
            Next::Reload(new, names) => {
                if let Some(w) = &writer {
                    w.borrow_mut().set_rules(names);
                }
                // The new program has a new id: count its errors instead.
                _xdp_errors = count_xdp_errors(&new, ifindex);
                inst = *new;
            }
        }
    }
    crate::service::stopping();
    let sink_error = writer.as_ref().and_then(|w| w.borrow_mut().finish());
    finish(
        &session,
        &inst,
        &writer,
        events_to_stdout,
        events_enabled || events_kind.is_some(),
    )?;
    if let Some(e) = sink_error {
        log::error!("event output failed: {e}");
    }
    Ok(())
}

/// Attaches the tracepoint programs that count `inst`'s XDP errors; they
/// count while the returned value lives (as long as `run`). A kernel that
/// refuses them costs a warning, not the firewall.
fn count_xdp_errors(inst: &Instance, ifindex: u32) -> Option<XdpErrorCounter> {
    match XdpErrorCounter::attach(inst, ifindex) {
        Ok(c) => Some(c),
        Err(e) => {
            log::warn!("XDP errors will not be counted: {e}");
            None
        }
    }
}

/// Detaches (if still ours) and prints the final counters.
fn finish(
    session: &Session<'_>,
    inst: &Instance,
    writer: &Option<Rc<RefCell<EventWriter>>>,
    events_to_stdout: bool,
    show_events: bool,
) -> Result<()> {
    let iface = session.iface;
    let s = stats::read(inst).context("cannot read the final counters")?;
    // Detach only our own program: a newer `run` may have taken over.
    let idx = xdpwall_dataplane::instance::ifindex(iface)?;
    match attach::current(idx)? {
        Some(cur) if cur.prog_id == inst.prog_id => {
            attach::detach(iface, false)?;
            log::info!("detached from {iface}");
        }
        _ => log::info!("another program now runs on {iface}; leaving it attached"),
    }
    let k = stats::events(inst).unwrap_or_default();
    let h = Header {
        iface,
        mode: session.mode.name(),
        transport: transport_name(session.transport),
        events: EventCounts {
            produced: k.produced,
            delivered: session.delivered,
            lost: k.lost,
        },
        xdp_errors: xdperr::read(inst).ok(),
        xdp_counting: None,
    };
    let table = stats_table(&h, &s, None);
    // Events on stdout stay machine-readable: the summary goes to stderr.
    if events_to_stdout {
        eprint!("{table}");
    } else {
        print!("{table}");
    }
    if show_events {
        let unwritten = writer.as_ref().map_or(0, |w| w.borrow().write_errors);
        log::info!(
            "events: produced {}, delivered {}, lost {} (buffer full){}",
            k.produced,
            session.delivered,
            k.lost,
            if unwritten > 0 {
                format!(", {unwritten} not written by the output")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// What ended one program generation's loop.
enum Next {
    /// SIGINT/SIGTERM.
    Exit,
    /// A successful reload: the new instance and its rule names.
    Reload(Box<Instance>, Vec<String>),
}

/// State of the foreground loop across reloads.
struct Session<'a> {
    args: &'a RunArgs,
    iface: &'a str,
    mode: AttachMode,
    transport: u32,
    buffer: u64,
    /// Perf buffer: records per wake-up (`[events] wakeup`; adaptive: 64).
    perf_per_wakeup: u32,
    /// Events delivered by all generations so far.
    delivered: u64,
    /// Reload counts for metrics.
    counters: &'a crate::metrics_server::RunCounters,
    /// Where `xdpwall reload` reaches us (None: it could not be opened, or
    /// a newer `run` took over).
    control: Option<control::Server>,
    /// The compiled config the program's tables hold now (to tell a set
    /// change, applied in place, from one that needs a new program); None
    /// when the tables cannot be trusted for an in-place change.
    live: Option<Compiled>,
}

impl Session<'_> {
    /// Serves one program generation: reads its events, prints counters on
    /// the interval, publishes the delivered count, handles signals.
    fn serve(
        &mut self,
        inst: &Instance,
        writer: Option<&Rc<RefCell<EventWriter>>>,
        signals: &mut Signals,
    ) -> Result<Next> {
        let consumer = match writer {
            Some(w) => {
                let w = Rc::clone(w);
                let opts = ConsumerOptions {
                    poll: if self.args.busy_poll {
                        Poll::Busy
                    } else {
                        Poll::Epoll
                    },
                    timeout: Duration::from_millis(10),
                    buffer: self.buffer,
                    perf_per_wakeup: self.perf_per_wakeup,
                };
                Some(Consumer::new(inst, self.transport, opts, move |r| {
                    w.borrow_mut().write(r)
                })?)
            }
            None => None,
        };
        let base = self.delivered;
        let delivered =
            |c: &Option<Consumer<'_>>| base + c.as_ref().map_or(0, |c| c.delivery().delivered);
        let ticker = (self.args.interval > 0).then(|| Duration::from_secs(self.args.interval));
        let (mut last_tick, mut last_publish) = (Instant::now(), Instant::now());
        loop {
            match &consumer {
                Some(c) => c.poll()?,
                None => std::thread::sleep(Duration::from_millis(20)),
            }
            if last_publish.elapsed() >= Duration::from_millis(250) {
                publish_delivered(inst, delivered(&consumer));
                last_publish = Instant::now();
            }
            if ticker.is_some_and(|t| last_tick.elapsed() >= t) {
                last_tick = Instant::now();
                if let Ok(s) = stats::read(inst) {
                    let k = stats::events(inst).unwrap_or_default();
                    let h = Header {
                        iface: self.iface,
                        mode: self.mode.name(),
                        transport: transport_name(self.transport),
                        events: EventCounts {
                            produced: k.produced,
                            delivered: delivered(&consumer),
                            lost: k.lost,
                        },
                        xdp_errors: xdperr::read(inst).ok(),
                        xdp_counting: None,
                    };
                    eprint!("{}", stats_table(&h, &s, None));
                }
            }
            let request = self.control.as_ref().and_then(control::Server::poll);
            let request = match request {
                Some(r) if r.cmd == control::Cmd::Yield => {
                    // A newer `run` took the interface over: it serves now.
                    self.control = None;
                    r.reply(Ok("yielded".into()));
                    log::info!(
                        "a newer `xdpwall run` took over {}; `xdpwall reload` now reaches it",
                        self.iface
                    );
                    continue;
                }
                r => r,
            };
            let sig = signals.pending().next();
            if sig.is_none() && request.is_none() {
                continue;
            }
            let stopping = matches!(sig, Some(s) if s != SIGHUP);
            if stopping {
                if let Some(r) = request {
                    r.reply(Err((1, "xdpwall run is shutting down".into())));
                }
            } else {
                crate::service::reloading();
                let outcome = reload(self.args, self.iface, inst, self.live.as_ref());
                crate::service::ready(&match &outcome {
                    Ok(Reloaded::InPlace(c)) => format!(
                        "filtering {}: {} rules (program id {}, sets updated in place)",
                        self.iface,
                        c.rules.len(),
                        inst.prog_id
                    ),
                    Ok(Reloaded::Swapped(new, c)) => format!(
                        "filtering {}: {} rules (program id {})",
                        self.iface,
                        c.rules.len(),
                        new.prog_id
                    ),
                    Err(_) => format!(
                        "filtering {}: the last reload failed, previous rules in force",
                        self.iface
                    ),
                });
                match outcome {
                    Ok(Reloaded::InPlace(c)) => {
                        self.counters
                            .reloads_ok
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let msg = format!(
                            "reloaded {}: sets updated in place (program id {}, {} rules)",
                            self.args.config.display(),
                            inst.prog_id,
                            c.rules.len()
                        );
                        log::info!("{msg}");
                        if let Some(r) = request {
                            r.reply(Ok(msg));
                        }
                        // After answering: the old sets' entries go now,
                        // making room for the next change.
                        if let Some(old) = self.live.replace(c) {
                            if let Err(e) = xdpwall_dataplane::update::retire(inst, &old) {
                                // Stale entries must never be switched to.
                                log::warn!("cannot clear the old sets' entries ({e}); the next reload loads a new program");
                                self.live = None;
                            }
                        }
                    }
                    Ok(Reloaded::Swapped(new, c)) => {
                        let names = rule_names(&c);
                        self.live = Some(c);
                        self.counters
                            .reloads_ok
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if let Some(c) = &consumer {
                            c.drain()?;
                        }
                        self.delivered = delivered(&consumer);
                        publish_delivered(&new, self.delivered);
                        let msg = format!(
                            "reloaded {} (program id {}, {} rules)",
                            self.args.config.display(),
                            new.prog_id,
                            names.len()
                        );
                        log::info!("{msg}");
                        if let Some(r) = request {
                            r.reply(Ok(msg));
                        }
                        return Ok(Next::Reload(new, names));
                    }
                    Err(e) => {
                        self.counters
                            .reloads_failed
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        // A switch that failed half-way may have left
                        // entries in the spare tables: the next reload
                        // loads a new program instead of switching again.
                        self.live = None;
                        log::error!("reload failed, the previous rules stay in force:\n{e:#}");
                        if let Some(r) = request {
                            r.reply(Err((
                                crate::exit::code_of(&e),
                                format!("reload failed, the previous rules stay in force:\n{e:#}"),
                            )));
                        }
                    }
                }
                continue;
            }
            if let Some(c) = &consumer {
                c.drain()?;
            }
            self.delivered = delivered(&consumer);
            publish_delivered(inst, self.delivered);
            return Ok(Next::Exit);
        }
    }
}

/// Records the delivered count in xw_info for `stats` in other processes.
fn publish_delivered(inst: &Instance, n: u64) {
    if let Ok(mut i) = inst.info() {
        i.delivered = n;
        let _ = inst.set_info(&i);
    }
}

/// How a reload was applied.
enum Reloaded {
    /// Only sets changed: the running program switched its address tables.
    InPlace(Compiled),
    /// A new program replaced the old one (atomically, sharing counters).
    Swapped(Box<Instance>, Compiled),
}

/// Re-reads the config. When only sets changed, the running program
/// switches to the new address tables in place (one map write, no new
/// program); otherwise a new program replaces it atomically and shares its
/// counters, so they follow rule names exactly.
fn reload(
    args: &RunArgs,
    iface: &str,
    old: &Instance,
    live: Option<&Compiled>,
) -> Result<Reloaded> {
    let (cfg, compiled) = load_compiled(&args.config)?;
    crate::config::check_redirect_targets(&cfg)?;
    if let Some(live) = live {
        match xdpwall_dataplane::update::check(old, live, &compiled) {
            Ok(()) => {
                xdpwall_dataplane::update::switch_sets(old, &compiled)?;
                return Ok(Reloaded::InPlace(compiled));
            }
            Err(why) => log::debug!("reload needs a new program: {why:?}"),
        }
    }
    let inst = load_after(&compiled, Some(old))?;
    let mode = args.mode.unwrap_or(cfg.xdp.mode);
    let attached = attach::attach(&inst, iface, mode, args.force)?;
    let idx = xdpwall_dataplane::instance::ifindex(iface)?;
    inst.set_info(&info(&cfg, &compiled, idx, &attached, &args.config))?;
    Ok(Reloaded::Swapped(Box::new(inst), compiled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verifier_figure_warns_only_past_nine_tenths_of_the_limit() {
        assert_eq!(verifier_warning(0), None);
        assert_eq!(verifier_warning(837_453), None);
        assert_eq!(verifier_warning(900_000), None);
        let w = verifier_warning(900_001).expect("a warning");
        assert!(w.contains("900001 of its 1000000"), "{w}");
        assert!(w.contains("may not load"), "{w}");
    }
}
