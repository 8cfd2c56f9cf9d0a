//! `xdpwall bench classify`: ns/packet of the XDP program under
//! BPF_PROG_TEST_RUN for small and large rule sets, as ratios against the
//! 1-rule figure measured in the same run, plus load times.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use etherparse::PacketBuilder;
use std::os::fd::{AsFd, BorrowedFd};

use crate::cli::{PollArg, TransportArg, WakeupArg};
use xdpwall_bench::peers::{bare_drop, xdp_filter, xdp_filter_object, FilterFill, Peer};
use xdpwall_dataplane::load::{load, LoadOptions};
use xdpwall_dataplane::testrun::time_fd;
use xdpwall_dataplane::Instance;
use xdpwall_rules::compile::compile;
use xdpwall_rules::synth::{
    bench_rules_toml, probe_rule_toml, set_file_lines, ProbeRule, FIRST4, FIRST6, LAST4, LAST6,
};
use xdpwall_rules::{load_config, Config};

/// Options of `bench classify`.
pub struct ClassifyArgs {
    /// Rules in the large set.
    pub rules: usize,
    /// Entries in the large CIDR set.
    pub set_entries: usize,
    /// BPF_PROG_TEST_RUN repetitions per measurement.
    pub repeat: u32,
    /// Measurements per row (the median is reported).
    pub runs: usize,
    /// Also write the rows as JSON here.
    pub json: Option<PathBuf>,
    /// Also draw the cells as an SVG bar chart here.
    pub svg: Option<PathBuf>,
}

const DST4: [u8; 4] = [198, 51, 100, 2];
const DST6: Ipv6Addr = Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0xd);
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

/// A UDP probe frame from `src` to port `dport` (destination outside every
/// generated rule's space).
fn udp(src: IpAddr, dport: u16) -> Vec<u8> {
    let mut pkt = Vec::new();
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let b = match src {
        IpAddr::V4(s) => eth.ipv4(s.octets(), DST4, 64),
        IpAddr::V6(s) => eth.ipv6(s.octets(), DST6.octets(), 64),
    }
    .udp(40_000, dport);
    // Writing into a Vec cannot fail.
    let _ = b.write(&mut pkt, &[0u8; 18]);
    pkt
}

/// One probe: a packet, the rule it must hit (None: the default) and the
/// verdict that follows.
struct Probe {
    name: &'static str,
    pkt: Vec<u8>,
    rule: Option<&'static str>,
    xdp: u32,
}

fn hit(name: &'static str, r: &ProbeRule) -> Probe {
    Probe {
        name,
        pkt: udp(r.src, r.dport),
        rule: Some(r.name),
        xdp: XDP_DROP,
    }
}

fn miss(name: &'static str, src: IpAddr) -> Probe {
    Probe {
        name,
        pkt: udp(src, 4242),
        rule: None,
        xdp: XDP_PASS,
    }
}

/// Separately loaded copies of every program. One copy's cost for one
/// probe can stay 10–30 % high for a whole run while the same code in another
/// load does not (the slow cell moves from run to run with the code
/// unchanged: where the kernel placed that load, not what it runs); a cell
/// is the minimum over its copies, so it measures the code.
const COPIES: usize = 2;

/// Timings of one probe against one loaded program (all its copies).
struct Cell {
    inst: usize,
    probe: usize,
    /// The verdict the program must return (a bare XDP_DROP drops all).
    want: u32,
    /// ns per packet of each call, by copy.
    ns: [Vec<f64>; COPIES],
}

impl Cell {
    fn new(inst: usize, probe: usize, want: u32) -> Self {
        Self {
            inst,
            probe,
            want,
            ns: Default::default(),
        }
    }
    fn all(&self) -> Vec<f64> {
        self.ns.iter().flatten().copied().collect()
    }
    fn min(&self) -> f64 {
        min_of(&self.all())
    }
    fn median(&self) -> f64 {
        let mut v = self.all();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

fn min_of(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// [`COPIES`] results of `load`, and the ms from `start` to the first one.
fn load_copies<T>(
    start: Instant,
    name: &str,
    load: impl Fn() -> Result<T>,
) -> Result<(Vec<T>, f64)> {
    let mut copies = Vec::with_capacity(COPIES);
    let mut ms = 0.0;
    for k in 0..COPIES {
        copies.push(load().with_context(|| format!("loading {name}"))?);
        if k == 0 {
            ms = start.elapsed().as_secs_f64() * 1e3;
        }
    }
    Ok((copies, ms))
}

/// One table: probes (columns), rows of cells, the first row the reference.
struct Table {
    title: &'static str,
    probes: Vec<Probe>,
    /// Row name and its cells (one per probe, in probe order).
    rows: Vec<(String, Vec<Cell>)>,
}

/// A program under test, in [`COPIES`] copies: xdpwall's (with its
/// config, to check probes with the reference classifier) or a peer's.
enum Prog {
    Xdpwall(Box<Config>, Vec<Instance>),
    Peer(Vec<Peer>),
}

impl Prog {
    fn fd(&self, copy: usize) -> Option<BorrowedFd<'_>> {
        match self {
            Prog::Xdpwall(_, i) => i.get(copy).map(|i| i.prog.as_fd()),
            Prog::Peer(p) => p.get(copy).map(Peer::fd),
        }
    }
}

/// Loaded programs and their load times.
#[derive(Default)]
struct Programs {
    loaded: Vec<(String, Prog, f64)>,
}

impl Programs {
    /// Parses, compiles and loads `path`, [`COPIES`] times; the load time
    /// is the first copy's (the whole path, as `xdpwall run` takes it).
    fn load(&mut self, name: &str, path: &Path) -> Result<usize> {
        let t = Instant::now();
        let cfg = load_config(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let c = compile(&cfg)?;
        let (copies, ms) = load_copies(t, name, || Ok(load(&c, LoadOptions::default())?))?;
        eprintln!("  {name}: loaded in {ms:.0} ms");
        self.loaded
            .push((name.into(), Prog::Xdpwall(Box::new(cfg), copies), ms));
        Ok(self.loaded.len() - 1)
    }

    fn add_peer(&mut self, name: &str, load: impl Fn() -> Result<Peer>) -> Result<usize> {
        let (copies, ms) = load_copies(Instant::now(), name, load)?;
        self.loaded.push((name.into(), Prog::Peer(copies), ms));
        Ok(self.loaded.len() - 1)
    }

    /// Fails unless the reference classifier sends `p` to the rule the
    /// probe names under program `i` (a probe that hit another rule would
    /// measure the wrong thing).
    fn check(&self, i: usize, p: &Probe) -> Result<()> {
        let (name, prog, _) = &self.loaded[i];
        let Prog::Xdpwall(cfg, _) = prog else {
            return Ok(());
        };
        let o = xdpwall_reference::classify(cfg, &p.pkt);
        let got = o.rule.map(|r| cfg.rules[r].name.as_str());
        anyhow::ensure!(
            got == p.rule && o.verdict.xdp() == Some(p.xdp),
            "probe `{}` under {name}: the reference says rule {got:?}, the bench expects {:?}",
            p.name,
            p.rule
        );
        Ok(())
    }
}

fn row(
    progs: &Programs,
    name: &str,
    insts: &[usize],
    probes: &[Probe],
) -> Result<(String, Vec<Cell>)> {
    let mut cells = Vec::new();
    for (probe, (&inst, p)) in insts.iter().zip(probes).enumerate() {
        progs.check(inst, p)?;
        cells.push(Cell::new(inst, probe, p.xdp));
    }
    Ok((name.into(), cells))
}

/// A row of a program that drops every probe (the bare XDP_DROP ceiling).
fn drop_row(name: &str, inst: usize, probes: &[Probe]) -> (String, Vec<Cell>) {
    let cells = (0..probes.len())
        .map(|probe| Cell::new(inst, probe, XDP_DROP))
        .collect();
    (name.into(), cells)
}

/// Interleaves every cell's measurements so drift hits all alike.
fn measure(tables: &mut [Table], progs: &Programs, args: &ClassifyArgs) -> Result<()> {
    let total = args.runs;
    for run in 0..total {
        eprint!("\r  run {}/{total}", run + 1);
        for t in tables.iter_mut() {
            for (_, cells) in &mut t.rows {
                for c in cells.iter_mut() {
                    let p = &t.probes[c.probe];
                    let (name, prog, _) = &progs.loaded[c.inst];
                    for (k, ns) in c.ns.iter_mut().enumerate() {
                        let fd = prog
                            .fd(k)
                            .with_context(|| format!("{name}: copy {k} is not loaded"))?;
                        let (ret, d) = time_fd(fd, &p.pkt, args.repeat)?;
                        anyhow::ensure!(
                            ret == c.want,
                            "{name} (copy {k}), probe {}: verdict {ret}, expected {}",
                            p.name,
                            c.want
                        );
                        ns.push(d.as_nanos() as f64);
                    }
                }
            }
        }
    }
    eprintln!();
    Ok(())
}

/// Runs the classify benchmark; prints Markdown tables (and writes JSON).
pub fn classify(args: &ClassifyArgs) -> Result<()> {
    if std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").is_ok_and(|s| s.trim() != "0")
    {
        eprintln!(
            "warning: kernel.bpf_stats_enabled=1 adds time to every run; figures are inflated"
        );
    }
    anyhow::ensure!(
        args.rules >= 4,
        "--rules must be at least 4 (the probe rules)"
    );
    let dir = std::env::temp_dir().join(format!("xdpwall-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = Cleanup(dir.clone());
    let write = |name: &str, text: &str| -> Result<PathBuf> {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    };
    let mut progs = Programs::default();
    eprintln!("loading rule sets…");

    // Rules: the 1-rule reference is, per probe, a program holding only the
    // rule that probe hits (or, for the default, only the family's last).
    let probes = vec![
        hit("IPv4 first rule", &FIRST4),
        hit("IPv4 last rule", &LAST4),
        miss("IPv4 default", IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1))),
        hit("IPv6 first rule", &FIRST6),
        hit("IPv6 last rule", &LAST6),
        miss(
            "IPv6 default",
            IpAddr::V6(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 9)),
        ),
    ];
    let mut single = Vec::new();
    for r in [&FIRST4, &LAST4, &FIRST6, &LAST6] {
        let p = write(&format!("{}.toml", r.name), &probe_rule_toml(r))?;
        single.push(progs.load(&format!("1 rule ({})", r.name), &p)?);
    }
    let one = [
        single[0], single[1], single[1], single[2], single[3], single[3],
    ];
    let mut rules = Table {
        title: "rules",
        probes,
        rows: Vec::new(),
    };
    rules.rows.push(row(&progs, "1 rule", &one, &rules.probes)?);
    let mut ibig_rules = 0;
    for n in [100, args.rules] {
        let p = write(&format!("rules-{n}.toml"), &bench_rules_toml(n, 1))?;
        let i = progs.load(&format!("{n} rules"), &p)?;
        let name = format!("{n} rules");
        rules.rows.push(row(&progs, &name, &[i; 6], &rules.probes)?);
        ibig_rules = i;
    }

    // Sets: a source in the set against a 1-entry set holding it; a source
    // outside the set but in a /16 the set populates (the full lookup,
    // then the default) and one far from it, against an empty set.
    write("set.txt", &set_file_lines(args.set_entries, 1))?;
    let set_rule = "\n[[rule]]\nname = \"big-set\"\nsrc = \"@big\"\naction = \"drop\"\n";
    let member = IpAddr::V4(Ipv4Addr::new(100, 64, 0, 0));
    let one_entry = write(
        "set1.toml",
        &format!("[sets]\nbig = [\"{member}\"]\n{set_rule}"),
    )?;
    let empty = write("set0.toml", &format!("[sets]\nbig = []\n{set_rule}"))?;
    let big = write(
        "setn.toml",
        &format!("[sets]\nbig = {{ file = \"set.txt\" }}\n{set_rule}"),
    )?;
    let set_probes = vec![
        Probe {
            name: "source in the set",
            pkt: udp(member, 4242),
            rule: Some("big-set"),
            xdp: XDP_DROP,
        },
        // 100.64.0.1 is not generated (entries step by 3 from 100.64.0.0).
        miss(
            "near miss (same /16)",
            IpAddr::V4(Ipv4Addr::new(100, 64, 0, 1)),
        ),
        miss("far miss", IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1))),
    ];
    let (i1, i0) = (
        progs.load("1-entry set", &one_entry)?,
        progs.load("empty set", &empty)?,
    );
    let n_name = format!("{}-entry set", args.set_entries);
    let ibig = progs.load(&n_name, &big)?;
    let mut sets = Table {
        title: "sets",
        probes: set_probes,
        rows: Vec::new(),
    };
    sets.rows.push(row(
        &progs,
        "1-entry / empty set",
        &[i1, i0, i0],
        &sets.probes,
    )?);
    sets.rows
        .push(row(&progs, &n_name, &[ibig; 3], &sets.probes)?);

    let peers = peer_table(&mut progs, ibig_rules, args.rules)?;
    let mut tables = vec![rules, sets, peers];
    eprintln!(
        "measuring: {} calls of {} repetitions per cell, interleaved…",
        args.runs, args.repeat
    );
    measure(&mut tables, &progs, args)?;
    println!(
        "ns/packet under BPF_PROG_TEST_RUN: min (median) of {} calls x {} repetitions on each of {COPIES} separately loaded copies of every program; ratio = min / the first row's min\n",
        args.runs, args.repeat
    );
    for t in &tables {
        println!("{}\n", markdown(t));
    }
    if let Some(path) = &args.json {
        std::fs::write(path, json(&tables, &progs, args)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.svg {
        let title = format!(
            "xdpwall bench classify: ns/packet under BPF_PROG_TEST_RUN, min (whisker to median) of {} x {}",
            args.runs, args.repeat
        );
        xdpwall_bench::plot::bars(path, &title, "ns", &bars(&tables))?;
    }
    Ok(())
}

/// One bar per cell: the minimum, a whisker to the median.
fn bars(tables: &[Table]) -> Vec<xdpwall_bench::plot::Bar> {
    let mut out = Vec::new();
    for t in tables {
        for (i, (name, cells)) in t.rows.iter().enumerate() {
            let group = if i == 0 {
                0
            } else if name.starts_with("xdp-filter") {
                2
            } else {
                1
            };
            for c in cells {
                out.push(xdpwall_bench::plot::Bar {
                    label: format!("{name} — {}", t.probes[c.probe].name),
                    value: c.min(),
                    spread: Some((c.min(), c.median())),
                    group,
                });
            }
        }
    }
    out
}

/// xdpwall against the ceiling and xdp-filter in the same harness: a UDP
/// packet its filter drops (xdpwall: the last of N rules; xdp-filter: a
/// listed source among 10,000, or a listed port) and one nothing matches
/// (every lookup done, then pass).
fn peer_table(progs: &mut Programs, xdpwall: usize, nrules: usize) -> Result<Table> {
    let probes = vec![
        Probe {
            name: "dropped",
            pkt: udp(LAST4.src, LAST4.dport),
            rule: Some(LAST4.name),
            xdp: XDP_DROP,
        },
        miss("passed", IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1))),
    ];
    let bare = progs.add_peer("bare XDP_DROP", bare_drop)?;
    let mut t = Table {
        title: "per packet vs peers",
        rows: vec![drop_row("bare XDP_DROP", bare, &probes)],
        probes,
    };
    let IpAddr::V4(target) = LAST4.src else {
        anyhow::bail!("the last probe rule is IPv4");
    };
    // 9,999 other listed sources inside 10.0.0.0/8, as the rules use it.
    let mut src4: Vec<Ipv4Addr> = (1..10_000u32)
        .map(|i| Ipv4Addr::from((10 << 24) | (i * 97)))
        .collect();
    src4.push(target);
    let dports: Vec<u16> = (0..99u16)
        .map(|i| 20_000 + i)
        .chain([LAST4.dport])
        .collect();
    let fills = [
        ("xdpfilt_alw_all", src4, dports.clone()),
        ("xdpfilt_alw_udp", Vec::new(), dports),
    ];
    for (obj, src4, dports) in fills {
        let name = format!("xdp-filter ({obj})");
        match xdp_filter_object(obj) {
            Some(path) => {
                let fill = FilterFill { src4, dports };
                let i = progs.add_peer(&name, || xdp_filter(&path, &fill))?;
                t.rows.push(row(progs, &name, &[i, i], &t.probes)?);
            }
            None => eprintln!(
                "  {name}: skipped, not installed (XDPWALL_SETUP_BENCH=1 scripts/setup.sh installs xdp-tools)"
            ),
        }
    }
    let name = format!("xdpwall, {nrules} rules");
    t.rows
        .push(row(progs, &name, &[xdpwall, xdpwall], &t.probes)?);
    Ok(t)
}

fn markdown(t: &Table) -> String {
    let mut out = format!("| {} |", t.title);
    let mut rule = String::from("|---|");
    for p in &t.probes {
        out.push_str(&format!(" {} | ratio |", p.name));
        rule.push_str("---:|---:|");
    }
    out.push('\n');
    out.push_str(&rule);
    let base: Vec<f64> = t.rows[0].1.iter().map(Cell::min).collect();
    for (name, cells) in &t.rows {
        out.push_str(&format!("\n| {name} |"));
        for (c, b) in cells.iter().zip(&base) {
            out.push_str(&format!(
                " {:.1} ({:.1}) | {:.2} |",
                c.min(),
                c.median(),
                c.min() / b
            ));
        }
    }
    out
}

fn json(tables: &[Table], progs: &Programs, args: &ClassifyArgs) -> Result<String> {
    let mut cells = Vec::new();
    for t in tables {
        let base: Vec<f64> = t.rows[0].1.iter().map(Cell::min).collect();
        for (name, row) in &t.rows {
            for (c, b) in row.iter().zip(&base) {
                let (prog, _, load_ms) = &progs.loaded[c.inst];
                cells.push(serde_json::json!({
                    "table": t.title,
                    "row": name,
                    "probe": t.probes[c.probe].name,
                    "program": prog,
                    "load_ms": load_ms,
                    "min_ns": c.min(),
                    "median_ns": c.median(),
                    "min_ns_by_copy": c.ns.iter().map(|v| min_of(v)).collect::<Vec<f64>>(),
                    "ratio": c.min() / b,
                }));
            }
        }
    }
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "bench": "classify",
        "repeat": args.repeat,
        "runs": args.runs,
        "copies": COPIES,
        "cells": cells,
    }))?)
}

/// Removes a scratch directory on drop.
pub(crate) struct Cleanup(pub(crate) PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A result saved with `bench BENCH --json`, for `--from-json`: a file that
/// is not one is a usage error.
fn read_saved<T>(
    p: &Path,
    bench: &str,
    parse: impl FnOnce(&str) -> anyhow::Result<T>,
) -> Result<T> {
    let text =
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    parse(&text).map_err(|e| {
        crate::exit::usage(format!(
            "{}: not a `bench {bench} --json` result: {e}",
            p.display()
        ))
    })
}

/// Options of `bench transport`, as given on the command line.
pub struct TransportArgs {
    /// Events per cell.
    pub events: u64,
    /// Repetitions per cell.
    pub reps: usize,
    /// Producer counts.
    pub producers: Vec<u32>,
    /// Snaplens (packet bytes per record).
    pub snaplens: Vec<u32>,
    /// Transports.
    pub transports: Vec<crate::cli::TransportArg>,
    /// Wake-up policies.
    pub wakeups: Vec<crate::cli::WakeupArg>,
    /// Consumer waiting strategies.
    pub polls: Vec<crate::cli::PollArg>,
    /// Buffer per transport, MiB.
    pub buffer_mib: u64,
    /// Drain repetitions (0: none).
    pub drain_reps: usize,
    /// JSON output file.
    pub json: Option<PathBuf>,
    /// SVG output file.
    pub svg: Option<PathBuf>,
    /// Re-render a saved result instead of measuring.
    pub from_json: Option<PathBuf>,
}

/// `bench transport`: the transport matrix as a Markdown table, then the
/// targets; JSON and SVG on request.
pub fn transport(a: &TransportArgs) -> Result<()> {
    use xdpwall_bench::transport as t;
    if let Some(p) = &a.from_json {
        let r = read_saved(p, "transport", t::from_json)?;
        print_transport(&r, a.svg.as_deref())?;
        return Ok(());
    }
    let usage = |m: String| crate::exit::usage(format!("xdpwall bench transport: {m}"));
    if a.events == 0 || a.reps == 0 {
        return Err(usage("--events and --reps must be at least 1".into()));
    }
    if let Some(n) = a.producers.iter().find(|&&n| !(1..=2).contains(&n)) {
        return Err(usage(format!("--producers {n}: 1 or 2")));
    }
    if let Some(n) = a.snaplens.iter().find(|&&n| n > 1500) {
        return Err(usage(format!(
            "--snaplen {n}: at most 1500 (the logged frame is 1514 bytes)"
        )));
    }
    if !a.buffer_mib.is_power_of_two() || a.buffer_mib > 1024 {
        return Err(usage(format!(
            "--buffer-mib {}: a power of two up to 1024",
            a.buffer_mib
        )));
    }
    if a.producers.is_empty()
        || a.snaplens.is_empty()
        || a.transports.is_empty()
        || a.wakeups.is_empty()
        || a.polls.is_empty()
    {
        return Err(usage(
            "--producers, --snaplen, --transport, --wakeup and --poll need a value".into(),
        ));
    }
    let (ring_wakeups, perf_wakeups) = transport_wakeups(&a.wakeups);
    if a.transports.iter().all(|t| match t {
        TransportArg::Ringbuf => ring_wakeups.is_empty(),
        TransportArg::Perfbuf => perf_wakeups.is_empty(),
    }) {
        return Err(usage(
            "--wakeup adaptive is the ring buffer's alone: add --transport ringbuf or another wake-up".into(),
        ));
    }
    let dir = std::env::temp_dir().join(format!("xdpwall-bench-c-{}", std::process::id()));
    let _cleanup = Cleanup(dir.clone());
    let c_consumer = match xdpwall_bench::c_consumer::build(&dir) {
        Ok(bin) => Some(bin),
        Err(e) => {
            eprintln!("the C reference consumer is skipped: {e:#}");
            None
        }
    };
    let opts = xdpwall_bench::TransportOptions {
        events: a.events,
        reps: a.reps,
        producers: a.producers.clone(),
        snaplens: a.snaplens.clone(),
        transports: a
            .transports
            .iter()
            .map(|t| match t {
                TransportArg::Ringbuf => t::Transport::Ringbuf,
                TransportArg::Perfbuf => t::Transport::Perfbuf,
            })
            .collect(),
        polls: a
            .polls
            .iter()
            .map(|p| match p {
                PollArg::Epoll => xdpwall_events::Poll::Epoll,
                PollArg::Busy => xdpwall_events::Poll::Busy,
            })
            .collect(),
        ring_wakeups,
        perf_wakeups,
        buffer: a.buffer_mib << 20,
        c_consumer,
        drain_reps: a.drain_reps,
        ..Default::default()
    };
    let rows = xdpwall_bench::transport(&opts, &mut |line| eprintln!("{line}"))?;
    let drain = t::drain(&opts, &mut |line| eprintln!("{line}"))?;
    let report = t::TransportReport::new(rows, drain);
    if let Some(p) = &a.json {
        std::fs::write(p, t::json(&report)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    print_transport(&report, a.svg.as_deref())
}

/// `--wakeup` as the bench's ring and perf policies (batch: 64 records;
/// adaptive has no perf-buffer equivalent), in the bench's order.
fn transport_wakeups(
    w: &[WakeupArg],
) -> (
    Vec<xdpwall_bench::transport::Wakeup>,
    Vec<xdpwall_bench::transport::Wakeup>,
) {
    use xdpwall_bench::transport::Wakeup;
    let all = [
        (WakeupArg::Every, Wakeup::Every, true),
        (WakeupArg::Batch, Wakeup::Batch(64), true),
        (WakeupArg::Adaptive, Wakeup::Adaptive, false),
    ];
    let chosen = all.iter().filter(|(arg, ..)| w.contains(arg));
    let ring = chosen.clone().map(|&(_, w, _)| w).collect();
    let perf = chosen
        .filter(|(.., perf)| *perf)
        .map(|&(_, w, _)| w)
        .collect();
    (ring, perf)
}

/// The table and the targets on stdout; the charts if asked.
fn print_transport(
    r: &xdpwall_bench::transport::TransportReport,
    svg: Option<&Path>,
) -> Result<()> {
    use xdpwall_bench::transport as t;
    println!("{}", t::markdown(&r.rows));
    println!("{}", t::targets_markdown(&r.targets));
    if !r.drain.is_empty() {
        println!("{}", t::drain_markdown(&r.drain));
    }
    if let Some(p) = svg {
        let order = t::svg(r, p)?;
        eprintln!("wrote {} and {}", p.display(), order.display());
    }
    Ok(())
}

/// Options of `bench dataplane`, as given on the command line.
pub struct DataplaneArgs {
    /// Repetitions.
    pub reps: usize,
    /// Window per repetition.
    pub window: String,
    /// Warm-up per repetition.
    pub warmup: String,
    /// Generator CPUs.
    pub cpus: String,
    /// Frame size.
    pub size: usize,
    /// Rules in the large set.
    pub rules: usize,
    /// Entries in the CIDR set.
    pub set_entries: usize,
    /// bpf_stats pass.
    pub bpf_stats: bool,
    /// Rows to run (substrings; empty: all).
    pub rows: Vec<String>,
    /// JSON output file.
    pub json: Option<PathBuf>,
    /// SVG output file.
    pub svg: Option<PathBuf>,
    /// Re-render a saved result instead of measuring.
    pub from_json: Option<PathBuf>,
}

/// `bench dataplane`: the Markdown table on stdout, JSON and SVG on request.
pub fn dataplane(a: &DataplaneArgs) -> Result<()> {
    use xdpwall_bench::dataplane::report;
    use xdpwall_gen::units::{parse_cpus, parse_duration};
    if let Some(p) = &a.from_json {
        let r = read_saved(p, "dataplane", report::from_json)?;
        println!("{}", report::markdown(&r));
        if let Some(svg) = &a.svg {
            report::svg(&r, svg)?;
        }
        return Ok(());
    }
    let bad = |e: xdpwall_gen::Error| crate::exit::usage(format!("xdpwall bench dataplane: {e}"));
    if a.reps == 0 {
        return Err(crate::exit::usage(
            "xdpwall bench dataplane: --reps must be at least 1",
        ));
    }
    if !(60..=1514).contains(&a.size) {
        return Err(crate::exit::usage(format!(
            "xdpwall bench dataplane: --size {} not in 60..=1514",
            a.size
        )));
    }
    let opts = xdpwall_bench::dataplane::DataplaneOptions {
        reps: a.reps,
        window: parse_duration(&a.window).map_err(bad)?,
        warmup: parse_duration(&a.warmup).map_err(bad)?,
        cpus: parse_cpus(&a.cpus).map_err(bad)?,
        size: a.size,
        rules: a.rules.max(1),
        set_entries: a.set_entries.max(1),
        bpf_stats: a.bpf_stats,
        rows: a.rows.clone(),
    };
    let report = xdpwall_bench::dataplane::dataplane(&opts, &mut |l| eprintln!("{l}"))?;
    println!("{}", xdpwall_bench::dataplane::report::markdown(&report));
    if let Some(p) = &a.json {
        std::fs::write(p, xdpwall_bench::dataplane::report::json(&report)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &a.svg {
        xdpwall_bench::dataplane::report::svg(&report, p)?;
    }
    Ok(())
}
