//! `xdpwall capture`: tcpdump at the XDP hook. Taps the running xdpwall
//! program when there is one (its own buffers, so `run --events` is not
//! disturbed); otherwise loads a pass-through program for the duration.

use std::cell::Cell;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use xdpwall_dataplane::attach;
use xdpwall_dataplane::load::{load, LoadOptions};
use xdpwall_dataplane::tap::{self, TapLease, TapSpec};
use xdpwall_dataplane::{stats, Instance};
use xdpwall_events::{Consumer, ConsumerOptions, Poll};
use xdpwall_rules::compile::{abi, compile};
use xdpwall_rules::{parse_config, Mode};
use xdpwall_sinks::{PcapngSink, Sink, TerminalSink};

use crate::event_out::EventWriter;

/// Options of `capture`.
pub struct CaptureArgs {
    /// Interface.
    pub iface: String,
    /// `-w FILE.pcapng`.
    pub write: Option<PathBuf>,
    /// `-c N`.
    pub count: Option<u64>,
    /// `--snaplen`.
    pub snaplen: u32,
    /// `--transport`: perf buffer instead of the ring buffer.
    pub perfbuf: bool,
    /// `--busy-poll`.
    pub busy_poll: bool,
    /// Take the tap over from another live capture or top.
    pub force: bool,
}

/// The program being tapped, and whether we loaded it.
struct Target {
    inst: Instance,
    ours: bool,
}

fn pass_through() -> Result<Target> {
    let cfg = parse_config("", Path::new("(capture pass-through)"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let compiled = compile(&cfg)?;
    let inst = load(&compiled, LoadOptions::default())?;
    Ok(Target { inst, ours: true })
}

fn target(iface: &str) -> Result<Target> {
    let idx = xdpwall_dataplane::instance::ifindex(iface)?;
    match attach::current(idx)? {
        Some(cur) if cur.is_ours() => Ok(Target { inst: attach::find(iface)?, ours: false }),
        Some(cur) => bail!(
            "{iface} runs XDP program `{}` (id {}), which is not xdpwall's: capture can tap xdpwall or an interface without XDP",
            cur.name,
            cur.prog_id
        ),
        None => pass_through(),
    }
}

fn open_sink(write: Option<&Path>, snaplen: u32) -> Result<Box<dyn Sink + Send>> {
    Ok(match write {
        Some(p) => {
            let f = std::fs::File::create(p)
                .with_context(|| format!("cannot create {}", p.display()))?;
            Box::new(PcapngSink::with_snaplen(
                std::io::BufWriter::new(f),
                snaplen,
            )?)
        }
        None => Box::new(TerminalSink::new(
            std::io::BufWriter::new(std::io::stdout()),
            std::io::stdout().is_terminal(),
        )),
    })
}

/// Runs a capture until Ctrl-C or `-c N` packets.
pub fn capture(args: &CaptureArgs) -> Result<()> {
    if args
        .write
        .as_ref()
        .is_some_and(|p| p.extension().is_none_or(|e| e != "pcapng"))
    {
        return Err(crate::exit::usage("-w: the file must end in .pcapng"));
    }
    let sink = open_sink(args.write.as_deref(), args.snaplen)?;
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    let t = target(&args.iface)?;
    let transport = if args.perfbuf {
        abi::TRANSPORT_PERFBUF
    } else {
        abi::TRANSPORT_RINGBUF
    };
    let before = stats::events(&t.inst).unwrap_or_default();
    let writer = EventWriter::new(sink, rule_names(&t.inst));
    let written = Rc::new(Cell::new(0u64));
    let limit = args.count.unwrap_or(u64::MAX);
    let opts = ConsumerOptions {
        poll: if args.busy_poll {
            Poll::Busy
        } else {
            Poll::Epoll
        },
        timeout: Duration::from_millis(10),
        buffer: u64::from(abi::TAP_RING_SIZE),
        // Like tcpdump: each packet as it comes.
        perf_per_wakeup: 1,
    };
    let consumer = {
        let (w, n) = (Rc::clone(&writer), Rc::clone(&written));
        Consumer::tap(&t.inst, transport, opts, move |r| {
            if n.get() < limit {
                w.borrow_mut().write(r);
                n.set(n.get() + 1);
            }
        })?
    };
    // The consumer is open before the tap goes on: no event meets a reader-less buffer.
    let spec = TapSpec {
        snaplen: args.snaplen.min(abi::MAX_SNAPLEN),
        transport,
        flags: 0,
    };
    let mut lease = TapLease::acquire(&t.inst, &args.iface, spec, args.force)?;
    let mut guard = PassThroughGuard {
        iface: &args.iface,
        attached: false,
    };
    if t.ours {
        let a = attach::attach(&t.inst, &args.iface, Mode::Auto, false)?;
        guard.attached = true;
        if let Some(w) = a.warning {
            log::warn!("{w}");
        }
        eprintln!(
            "xdpwall capture: listening on {} with a pass-through program ({} mode), snaplen {}; Ctrl-C stops",
            args.iface,
            a.mode.name(),
            args.snaplen
        );
    } else {
        eprintln!(
            "xdpwall capture: tapping the xdpwall program on {} (id {}), snaplen {}; Ctrl-C stops",
            args.iface, t.inst.prog_id, args.snaplen
        );
    }
    let mut renewed = Instant::now();
    loop {
        consumer.poll()?;
        if written.get() >= limit || signals.pending().next().is_some() {
            break;
        }
        if renewed.elapsed() >= tap::RENEW_EVERY {
            lease.renew()?;
            renewed = Instant::now();
        }
    }
    lease.release();
    consumer.drain()?;
    let err = writer.borrow_mut().finish();
    let after = stats::events(&t.inst).unwrap_or_default();
    let d = consumer.delivery();
    eprintln!(
        "{} packets captured\n{} packets received by the tap\n{} packets lost in the kernel (buffer full)",
        written.get(),
        d.delivered,
        after.tap_lost - before.tap_lost
    );
    drop(guard);
    if let Some(e) = err {
        bail!("writing the capture failed: {e}");
    }
    Ok(())
}

fn rule_names(inst: &Instance) -> Vec<String> {
    stats::rule_names(inst).unwrap_or_default()
}

/// Detaches a pass-through program, also on error.
struct PassThroughGuard<'a> {
    iface: &'a str,
    attached: bool,
}

impl Drop for PassThroughGuard<'_> {
    fn drop(&mut self) {
        if self.attached {
            if let Err(e) = attach::detach(self.iface, false) {
                eprintln!("xdpwall capture: could not detach the pass-through program: {e}");
            }
        }
    }
}
