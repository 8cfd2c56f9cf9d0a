//! `xdpwall run CONFIG`: attach and stay in the foreground.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use xdpwall_dataplane::attach::{self, Attached};
use xdpwall_dataplane::load::{load, LoadOptions};
use xdpwall_dataplane::types::xw_info;
use xdpwall_dataplane::{stats, Instance};
use xdpwall_rules::compile::Compiled;
use xdpwall_rules::{Config, Mode, Verdict};

use crate::config::{load_compiled, load_compiled_timed};
use crate::output::{stats_table, Header};

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
        transport: 0,
        default_action: v(cfg.xdp.default),
        malformed_action: v(cfg.xdp.malformed),
        nrules: u32::try_from(c.rules.len()).unwrap_or(u32::MAX),
        ifindex,
        ..Default::default()
    };
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let room = i.config.len() - 1;
    for (d, &b) in i.config.iter_mut().zip(abs.as_os_str().as_encoded_bytes().iter().take(room)) {
        *d = b as i8;
    }
    i
}

/// Loads, attaches and writes the instance facts.
fn start(args: &RunArgs, iface: &str, cfg: &Config, c: &Compiled) -> Result<(Instance, Attached)> {
    let inst = load(c, LoadOptions::default())?;
    let mode = args.mode.unwrap_or(cfg.xdp.mode);
    let attached = attach::attach(&inst, iface, mode, args.force)?;
    let idx = xdpwall_dataplane::instance::ifindex(iface)?;
    inst.set_info(&info(cfg, c, idx, &attached, &args.config))?;
    Ok((inst, attached))
}

/// Runs until SIGINT/SIGTERM; SIGHUP reloads.
pub fn run(args: &RunArgs) -> Result<()> {
    let (cfg, compiled, timings) = load_compiled_timed(&args.config)?;
    let iface = args
        .iface
        .clone()
        .or_else(|| cfg.xdp.interface.clone())
        .ok_or_else(|| crate::exit::usage("no interface: pass --iface or set [xdp] interface"))?;
    // Register before attaching so a signal during start-up is not lost.
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP]).context("cannot install signal handlers")?;

    let t = std::time::Instant::now();
    let (mut inst, attached) = start(args, &iface, &cfg, &compiled)?;
    let set_entries: usize = cfg.sets.values().map(|s| s.entries.len()).sum();
    eprintln!(
        "xdpwall: {} rules, {} set entries -> {} classes, {} trie entries; parse {} ms, compile {} ms, load+attach {} ms",
        compiled.rules.len(),
        set_entries,
        compiled.classes.len(),
        compiled.src4.len() + compiled.dst4.len() + compiled.src6.len() + compiled.dst6.len(),
        timings.parse.as_millis(),
        timings.compile.as_millis(),
        t.elapsed().as_millis()
    );
    if let Some(w) = &attached.warning {
        eprintln!("xdpwall: warning: {w}");
    }
    match &attached.replaced {
        Some((old, name)) if name == xdpwall_dataplane::instance::PROG_NAME => {
            eprintln!("xdpwall: took over from xdpwall program id {old} (atomic replace)");
        }
        Some((old, name)) => {
            eprintln!("xdpwall: replaced XDP program `{name}` (id {old}) as --force asked (atomic replace)");
        }
        None => {}
    }
    eprintln!(
        "xdpwall: attached to {iface} ({} mode, program id {}), {} rules; Ctrl-C detaches",
        attached.mode.name(),
        inst.prog_id,
        compiled.rules.len()
    );
    let mode = attached.mode;

    let ticker = (args.interval > 0).then(|| Duration::from_secs(args.interval));
    loop {
        let sig = match ticker {
            None => signals.forever().next(),
            Some(t) => {
                std::thread::sleep(t);
                if let Ok(s) = stats::read(&inst) {
                    let h = Header { iface: &iface, mode: mode.name(), transport: "ringbuf" };
                    print!("{}", stats_table(&h, &s, None));
                }
                signals.pending().next()
            }
        };
        match sig {
            Some(SIGHUP) => match reload(args, &iface, &inst) {
                Ok(new) => {
                    eprintln!("xdpwall: reloaded {} (program id {})", args.config.display(), new.prog_id);
                    inst = new;
                }
                Err(e) => eprintln!("xdpwall: reload failed, the previous rules stay in force:\n{e:#}"),
            },
            Some(_) => break,
            None => continue,
        }
    }

    let s = stats::read(&inst).context("cannot read the final counters")?;
    // Detach only our own program: a newer `run` may have taken over.
    let idx = xdpwall_dataplane::instance::ifindex(&iface)?;
    match attach::current(idx)? {
        Some(cur) if cur.prog_id == inst.prog_id => {
            attach::detach(&iface, false)?;
            eprintln!("xdpwall: detached from {iface}");
        }
        _ => eprintln!("xdpwall: another program now runs on {iface}; leaving it attached"),
    }
    let h = Header { iface: &iface, mode: mode.name(), transport: "ringbuf" };
    print!("{}", stats_table(&h, &s, None));
    Ok(())
}

/// Re-reads the config and swaps the program atomically; counters follow
/// rule names into the new program (copied just before the swap).
fn reload(args: &RunArgs, iface: &str, old: &Instance) -> Result<Instance> {
    let (cfg, compiled) = load_compiled(&args.config)?;
    let inst = load(&compiled, LoadOptions::default())?;
    stats::carry(old, &inst).context("cannot carry counters into the new rules")?;
    let mode = args.mode.unwrap_or(cfg.xdp.mode);
    let attached = attach::attach(&inst, iface, mode, args.force)?;
    let idx = xdpwall_dataplane::instance::ifindex(iface)?;
    inst.set_info(&info(&cfg, &compiled, idx, &attached, &args.config))?;
    Ok(inst)
}
