//! `xdpwall bench reload`: how long `xdpwall reload` takes for sets of 1,
//! 100,000 and 1,000,000 entries, and what a stream of reloads under
//! generated traffic leaks or loses — against the real `xdpwall run` in a
//! lab namespace, reached the way users reach it (the control socket).
//!
//! Accounting under traffic uses the program's own counters, which are
//! shared by every generation: a flow from sources inside the set (to port
//! 9000) must all land on rule `drop-set`, a flow from outside (to port
//! 7000) on `pass-flow`; a 9000 packet on rule `leak` is one both configs
//! drop that passed, and frames sent but judged by no generation were lost.
//! (The default only sees the lab's own ARP.)

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xdpwall_dataplane::{attach, stats};
use xdpwall_gen::prog::XDP_TX;
use xdpwall_gen::{run as gen_run, AddrRange, FrameSpec, GenOptions, GenProgram, PortRange, Proto};
use xdpwall_lab::{Lab, LabOptions, IFNAME_B};
use xdpwall_rules::synth::set_file_lines;

use crate::control::{request, Cmd, Reply};

/// Options of `bench reload`.
pub struct ReloadArgs {
    /// Set sizes to time.
    pub entries: Vec<usize>,
    /// Reloads timed per size (idle).
    pub timed: usize,
    /// Reloads under traffic.
    pub reloads: usize,
    /// Set size during the traffic run.
    pub traffic_entries: usize,
    /// Offered frames per second (both flows together).
    pub rate: u64,
    /// Also write the results as JSON.
    pub json: Option<PathBuf>,
    /// Also draw the reload times as an SVG bar chart.
    pub svg: Option<PathBuf>,
}

const DROP_DPORT: u16 = 9000;
const PASS_DPORT: u16 = 7000;
/// Sources of the dropped flow: listed in every generation's set.
const DROP_NET: &str = "198.18.100.0/24";

/// The bench config with `set_file`; `extra` adds a rule that matches
/// nothing sent, so toggling it makes a reload that needs a new program
/// (a set change alone is applied in place).
fn config_with(set_file: &Path, extra: bool) -> String {
    let mut c = config(set_file);
    if extra {
        c.push_str("\n[[rule]]\nname = \"extra\"\nproto = \"sctp\"\naction = \"drop\"\n");
    }
    c
}

/// The i-th config of a reload cycle that alternates the two kinds of
/// reload: set change (in place), rule change (new program), …
fn cycle(files: &[PathBuf; 2], i: usize) -> (String, bool) {
    // (set, extra) goes (0,0) (1,0) (1,1) (0,1) (0,0) …: every step
    // changes one of them; odd steps change the set.
    let step = (i + 1) % 4;
    let set = usize::from(step == 1 || step == 2);
    let extra = step >= 2;
    (config_with(&files[set], extra), step % 2 == 1)
}

fn config(set_file: &Path) -> String {
    format!(
        "[xdp]\ndefault = \"pass\"\n\n[sets]\nblock = {{ file = \"{}\" }}\n\n\
         [[rule]]\nname = \"drop-set\"\nsrc = \"@block\"\naction = \"drop\"\n\n\
         [[rule]]\nname = \"pass-flow\"\nproto = \"udp\"\ndport = {PASS_DPORT}\naction = \"pass\"\n\n\
         [[rule]]\nname = \"leak\"\nproto = \"udp\"\ndport = {DROP_DPORT}\naction = \"pass\"\n",
        set_file.display()
    )
}

/// Two different set files of `n` entries, both listing [`DROP_NET`].
fn set_files(dir: &Path, n: usize) -> Result<[PathBuf; 2]> {
    let shift = 1000;
    let lines: Vec<String> = set_file_lines(n + shift, 1)
        .lines()
        .map(str::to_string)
        .collect();
    let mut out = Vec::new();
    for (k, range) in [0..n.saturating_sub(1), shift..shift + n.saturating_sub(1)]
        .into_iter()
        .enumerate()
    {
        let mut text = format!("{DROP_NET}\n");
        for l in &lines[range] {
            text.push_str(l);
            text.push('\n');
        }
        let p = dir.join(format!("set-{n}-{k}.txt"));
        std::fs::write(&p, text)?;
        out.push(p);
    }
    Ok([out[0].clone(), out[1].clone()])
}

/// `xdpwall run` in namespace b, its stderr lines on a channel.
struct Run {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Run {
    fn start(lab: &Lab, cfg: &Path) -> Result<Self> {
        let exe = std::env::current_exe().context("finding the xdpwall binary")?;
        let mut child = lab
            .b()
            .ns()
            .command(exe)
            .args(["run"])
            .arg(cfg)
            .args(["--iface", IFNAME_B, "--mode", "native"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting xdpwall run")?;
        let err = child.stderr.take().context("run's stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let run = Run { child, lines: rx };
        run.wait_for("attached to", Duration::from_secs(120))?;
        Ok(run)
    }

    fn wait_for(&self, needle: &str, timeout: Duration) -> Result<()> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return Ok(()),
                Ok(_) => {}
                Err(_) => bail!("xdpwall run did not say {needle:?} in {timeout:?}"),
            }
        }
    }

    /// Resident and peak resident set of the process, in KiB.
    fn rss(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        Ok((field("VmRSS:"), field("VmHWM:")))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // SIGTERM detaches; wait so the namespaces can go.
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// One `xdpwall reload` round trip, from inside namespace b.
fn reload_once(lab: &Lab) -> Result<Duration> {
    let t = Instant::now();
    let reply = lab
        .b()
        .ns()
        .run(|| request(IFNAME_B, Cmd::Reload, Duration::from_secs(120)))
        .context("entering namespace b")??;
    match reply {
        Reply::Ok(_) => Ok(t.elapsed()),
        Reply::Failed(code, text) => bail!("reload failed ({code}): {text}"),
    }
}

/// Packets counted by `drop-set`, `pass-flow` and `leak`.
fn counters(lab: &Lab) -> Result<(u64, u64, u64)> {
    let s = lab
        .b()
        .ns()
        .run(|| attach::find(IFNAME_B).and_then(|i| stats::read(&i)))
        .context("entering namespace b")??;
    let rule = |n: &str| {
        s.rules
            .iter()
            .find(|r| r.name == n)
            .map_or(0, |r| r.counter.packets)
    };
    Ok((rule("drop-set"), rule("pass-flow"), rule("leak")))
}

/// Timings of one set size.
#[derive(Debug, serde::Serialize)]
struct SizeRow {
    entries: usize,
    start_ms: f64,
    /// Reloads that changed the set (applied in place).
    in_place_ms: Vec<f64>,
    /// Reloads that changed a rule (a new program, verified and swapped).
    new_program_ms: Vec<f64>,
}

/// The traffic run.
#[derive(Debug, Default, serde::Serialize)]
struct TrafficRun {
    entries: usize,
    reloads: usize,
    offered_pps: u64,
    sent: u64,
    sent_pps: f64,
    tx_dropped: u64,
    judged: u64,
    dropped_by_set: u64,
    passed_by_rule: u64,
    leaked: u64,
    lost: u64,
    reload_ms: Vec<f64>,
    rss_idle_kib: u64,
    rss_load_kib: u64,
    rss_peak_kib: u64,
}

fn stats_of(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let med = s.get(s.len() / 2).copied().unwrap_or(f64::NAN);
    (
        s.first().copied().unwrap_or(f64::NAN),
        med,
        s.last().copied().unwrap_or(f64::NAN),
    )
}

/// Runs `bench reload`.
///
/// # Errors
/// The lab, `run`, a reload or the generator fails.
pub fn reload(args: &ReloadArgs) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("xdpwall-bench-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = super::bench::Cleanup(dir.clone());
    let lab = Lab::new(LabOptions::default().ipv6(false)).context("building the lab")?;
    let cfg = dir.join("rules.toml");

    let mut sizes = Vec::new();
    for &n in &args.entries {
        eprintln!("set of {n} entries: writing, starting run…");
        let files = set_files(&dir, n)?;
        std::fs::write(&cfg, config(&files[0]))?;
        let t = Instant::now();
        let run = Run::start(&lab, &cfg)?;
        let start_ms = t.elapsed().as_secs_f64() * 1e3;
        let mut row = SizeRow {
            entries: n,
            start_ms,
            in_place_ms: Vec::new(),
            new_program_ms: Vec::new(),
        };
        for i in 0..2 * args.timed {
            let (text, in_place) = cycle(&files, i);
            std::fs::write(&cfg, text)?;
            let ms = reload_once(&lab)?.as_secs_f64() * 1e3;
            if in_place {
                row.in_place_ms.push(ms);
            } else {
                row.new_program_ms.push(ms);
            }
            eprint!("\r  reload {}/{}", i + 1, 2 * args.timed);
        }
        eprintln!();
        drop(run);
        sizes.push(row);
    }

    let traffic = traffic_run(&lab, &dir, &cfg, args)?;

    println!(
        "`xdpwall reload` round trip in ms, min / median / max: a set change (applied in place: \
         parse, compile, write the other generation, switch) and a rule change (parse, compile, \
         load and verify a new program, atomic replace):\n"
    );
    println!("| set entries | start | set change (in place) | rule change (new program) |");
    println!("|---:|---:|---|---|");
    for r in &sizes {
        let (a, b, c) = stats_of(&r.in_place_ms);
        let (d, e, f) = stats_of(&r.new_program_ms);
        println!(
            "| {} | {:.0} | {a:.0} / {b:.0} / {c:.0} | {d:.0} / {e:.0} / {f:.0} |",
            r.entries, r.start_ms
        );
    }
    let t = &traffic;
    let (lo, med, hi) = stats_of(&t.reload_ms);
    println!(
        "\n{} reloads (alternately a set change, in place, and a rule change, a new program) of a \
         {}-entry set under {:.0} pps of generated UDP ({} frames sent, {} dropped by the veth):\n",
        t.reloads, t.entries, t.sent_pps, t.sent, t.tx_dropped
    );
    println!("| judged | dropped by the set | passed by rule | leaked | lost | reload ms (min/median/max) |");
    println!("|---:|---:|---:|---:|---:|---|");
    println!(
        "| {} | {} | {} | {} | {} | {lo:.0} / {med:.0} / {hi:.0} |",
        t.judged, t.dropped_by_set, t.passed_by_rule, t.leaked, t.lost
    );
    println!(
        "\nRSS of `xdpwall run`: {} KiB idle, {} KiB under load, peak {} KiB",
        t.rss_idle_kib, t.rss_load_kib, t.rss_peak_kib
    );
    if let Some(p) = &args.svg {
        let mut bars = Vec::new();
        for r in &sizes {
            for (kind, v, group) in [
                ("set change, in place", &r.in_place_ms, 1),
                ("rule change, new program", &r.new_program_ms, 2),
            ] {
                let (lo, med, hi) = stats_of(v);
                bars.push(xdpwall_bench::plot::Bar {
                    label: format!("{} entries, {kind}", r.entries),
                    value: med,
                    spread: Some((lo, hi)),
                    group,
                });
            }
        }
        let title = "xdpwall bench reload: `xdpwall reload` round trip, median (whisker min–max)";
        xdpwall_bench::plot::bars(p, title, "ms", &bars)?;
    }
    if let Some(p) = &args.json {
        let v = serde_json::json!({"bench": "reload", "sizes": sizes, "traffic": traffic});
        std::fs::write(p, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

fn traffic_run(lab: &Lab, dir: &Path, cfg: &Path, args: &ReloadArgs) -> Result<TrafficRun> {
    let n = args.traffic_entries;
    eprintln!(
        "traffic: {} reloads of a {n}-entry set under {} pps…",
        args.reloads, args.rate
    );
    let files = set_files(dir, n)?;
    std::fs::write(cfg, config(&files[0]))?;
    let run = Run::start(lab, cfg)?;
    let mut out = TrafficRun {
        entries: n,
        reloads: args.reloads,
        offered_pps: args.rate,
        ..Default::default()
    };
    out.rss_idle_kib = run.rss()?.0;
    let (a, b) = (lab.a(), lab.b());
    let spec = |src: Ipv4Addr, dport| FrameSpec {
        src_mac: a.mac(),
        dst_mac: b.mac(),
        src: IpAddr::V4(src),
        dst: IpAddr::V4(b.ipv4()),
        proto: Proto::Udp,
        sport: 1024,
        dport,
        size: 64,
    };
    let sports = PortRange {
        first: 1024,
        count: 1000,
    };
    let flows = [
        (Ipv4Addr::new(198, 18, 100, 1), 250, DROP_DPORT),
        (Ipv4Addr::new(198, 18, 50, 1), 250, PASS_DPORT),
    ];
    let mut gens = Vec::new();
    for (src, count, dport) in flows {
        let s = spec(src, dport);
        let range = AddrRange {
            first: IpAddr::V4(src),
            count,
            step: 1,
        };
        gens.push((GenProgram::load(&s, &range, &sports, XDP_TX)?, s.build()?));
    }
    let cpus = xdpwall_gen::run::allowed_cpus()?;
    let ifindex = a.ifindex();
    let stop = AtomicBool::new(false);
    let before = counters(lab)?;
    // The interface's own drops over the whole phase (each sender's report
    // covers the same interface, so their tx_dropped cannot be summed).
    let link = || xdpwall_gen::netdev::link_stats(Some(a.ns().path()), ifindex);
    let link_before = link()?;
    let reports = std::thread::scope(|s| -> Result<Vec<xdpwall_gen::Report>> {
        let handles: Vec<_> = gens
            .iter()
            .enumerate()
            .map(|(i, (prog, frame))| {
                let opts = GenOptions {
                    ifindex,
                    netns: Some(a.ns().path().to_path_buf()),
                    cpus: vec![cpus[i % cpus.len()]],
                    batch: 64,
                    rate: Some(args.rate / 2),
                    // Until the reloads are done (the stop flag).
                    duration: Some(Duration::from_secs(24 * 3600)),
                    count: None,
                    nice: None,
                };
                let stop = &stop;
                s.spawn(move || gen_run(prog, frame, &opts, stop))
            })
            .collect();
        let mut result = Ok(());
        for i in 0..args.reloads {
            std::fs::write(cfg, cycle(&files, i).0)?;
            match reload_once(lab) {
                Ok(d) => out.reload_ms.push(d.as_secs_f64() * 1e3),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            if i == args.reloads / 2 {
                out.rss_load_kib = run.rss()?.0;
            }
            eprint!("\r  reload {}/{}", i + 1, args.reloads);
        }
        eprintln!();
        stop.store(true, Ordering::Relaxed);
        let reports: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a sender panicked")))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .collect::<std::result::Result<Vec<_>, _>>()?;
        result.map(|()| reports)
    })?;
    out.rss_peak_kib = run.rss()?.1;
    out.sent = reports.iter().map(|r| r.sent.packets).sum();
    out.tx_dropped = link()?.since(&link_before).tx_dropped;
    let secs = reports
        .iter()
        .map(|r| r.elapsed.as_secs_f64())
        .fold(0.0, f64::max);
    out.sent_pps = out.sent as f64 / secs.max(1e-9);
    // The receiving veth judges frames in its own softirq, after the sender
    // returned: wait (bounded) until every frame that left is counted.
    let expect = out.sent.saturating_sub(out.tx_dropped);
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let c = counters(lab)?;
        let judged = (c.0 + c.1 + c.2) - (before.0 + before.1 + before.2);
        if judged >= expect || Instant::now() > deadline {
            break c;
        }
        std::thread::yield_now();
    };
    out.dropped_by_set = after.0 - before.0;
    out.passed_by_rule = after.1 - before.1;
    out.leaked = after.2 - before.2;
    out.judged = out.dropped_by_set + out.passed_by_rule + out.leaked;
    out.lost = expect.saturating_sub(out.judged);
    drop(run);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each step changes exactly one thing, alternately the set (in place)
    /// and a rule (new program), and the cycle returns to the start.
    #[test]
    fn the_cycle_alternates_set_and_rule_changes() {
        let files = [PathBuf::from("a.txt"), PathBuf::from("b.txt")];
        let start = config_with(&files[0], false);
        let mut prev = start.clone();
        for i in 0..8 {
            let (text, in_place) = cycle(&files, i);
            assert_eq!(in_place, i % 2 == 0, "step {i}");
            let set_changed = prev.contains("a.txt") != text.contains("a.txt");
            let rule_changed = prev.contains("extra") != text.contains("extra");
            assert!(set_changed ^ rule_changed, "step {i} changes one thing");
            assert_eq!(set_changed, in_place, "step {i}");
            prev = text;
        }
        assert_eq!(prev, start);
    }
}
