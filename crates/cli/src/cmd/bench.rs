//! `xdpwall bench classify`: ns/packet of the XDP program under
//! BPF_PROG_TEST_RUN for small and large rule sets, as ratios against the
//! 1-rule figure measured in the same run, plus load times.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use etherparse::PacketBuilder;
use xdpwall_dataplane::load::{load, LoadOptions};
use xdpwall_dataplane::Instance;
use xdpwall_rules::compile::compile;
use xdpwall_rules::load_config;
use xdpwall_rules::synth::{mixed_rules_toml, set_file_lines, TARGET_DPORT, TARGET_SRC};

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
}

fn udp(src: [u8; 4], dport: u16) -> Vec<u8> {
    let mut pkt = Vec::new();
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, [198, 51, 100, 2], 64)
        .udp(40_000, dport);
    // Writing into a Vec cannot fail.
    let _ = b.write(&mut pkt, &[0u8; 18]);
    pkt
}

/// Min and median ns/packet over `runs` calls; min is the least disturbed
/// figure on a shared machine, the median shows the spread.
fn time_ns(inst: &Instance, pkt: &[u8], repeat: u32) -> Result<(u32, f64)> {
    let (ret, d) = inst.time_run(pkt, repeat)?;
    Ok((ret, d.as_nanos() as f64))
}

#[derive(Default)]
struct Cell(Vec<f64>);

impl Cell {
    fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }
    fn median(&self) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

struct Row {
    name: String,
    load_ms: f64,
    inst: Instance,
    /// (probe packet, expected XDP verdict, timings)
    cells: Vec<(Vec<u8>, u32, Cell)>,
}

fn prepare(name: &str, path: &std::path::Path, probes: &[(Vec<u8>, u32)]) -> Result<Row> {
    let t = Instant::now();
    let cfg = load_config(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let c = compile(&cfg)?;
    let inst = load(&c, LoadOptions::default()).with_context(|| format!("loading {name}"))?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let cells = probes
        .iter()
        .map(|(p, v)| (p.clone(), *v, Cell::default()))
        .collect();
    Ok(Row {
        name: name.into(),
        load_ms,
        inst,
        cells,
    })
}

/// Interleaves the rows' measurements so drift on the machine hits all alike.
fn measure(rows: &mut [Row], args: &ClassifyArgs) -> Result<()> {
    for _ in 0..args.runs {
        for row in rows.iter_mut() {
            for (pkt, want, cell) in &mut row.cells {
                let (ret, ns) = time_ns(&row.inst, pkt, args.repeat)?;
                anyhow::ensure!(
                    ret == *want,
                    "{}: probe verdict {ret}, expected {want}",
                    row.name
                );
                cell.0.push(ns);
            }
        }
    }
    Ok(())
}

/// Runs the classify benchmark and prints a Markdown table.
pub fn classify(args: &ClassifyArgs) -> Result<()> {
    if std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").is_ok_and(|s| s.trim() != "0")
    {
        eprintln!(
            "warning: kernel.bpf_stats_enabled=1 adds time to every run; figures are inflated"
        );
    }
    let dir = std::env::temp_dir().join(format!("xdpwall-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = Cleanup(dir.clone());
    let write = |name: &str, text: &str| -> Result<PathBuf> {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    };
    let one = write("one.toml", &mixed_rules_toml(1, 1))?;
    let many = write("many.toml", &mixed_rules_toml(args.rules, 1))?;
    write("set.txt", &set_file_lines(args.set_entries, 1))?;
    let set = write(
        "set.toml",
        "[sets]\nbig = { file = \"set.txt\" }\n\n[[rule]]\nname = \"big-set\"\nsrc = \"@big\"\naction = \"drop\"\n\n\
         [[rule]]\nname = \"target\"\nsrc = \"192.0.2.1\"\nproto = \"udp\"\ndport = 5353\naction = \"drop\"\n",
    )?;
    let empty_set = write(
        "empty-set.toml",
        "[sets]\nbig = []\n\n[[rule]]\nname = \"big-set\"\nsrc = \"@big\"\naction = \"drop\"\n\n\
         [[rule]]\nname = \"target\"\nsrc = \"192.0.2.1\"\nproto = \"udp\"\ndport = 5353\naction = \"drop\"\n",
    )?;

    eprintln!("loading rule sets…");
    let hit = udp(TARGET_SRC, TARGET_DPORT);
    let miss = udp([198, 51, 100, 1], 4242);
    // A source inside the big set (its first entry) and the same packet
    // against the empty set: what a trie of that size costs a lookup.
    let member = udp([100, 64, 0, 0], 4242);
    let (drop, pass) = (1, 2);
    let mut rules = vec![
        prepare("1 rule", &one, &[(hit.clone(), drop), (miss.clone(), pass)])?,
        prepare(
            &format!("{} mixed rules", args.rules),
            &many,
            &[(hit.clone(), drop), (miss.clone(), pass)],
        )?,
    ];
    let mut sets = vec![
        prepare(
            "empty set + 1 rule",
            &empty_set,
            &[(member.clone(), pass), (miss.clone(), pass)],
        )?,
        prepare(
            &format!("{}-entry set + 1 rule", args.set_entries),
            &set,
            &[(member, drop), (miss, pass)],
        )?,
    ];
    eprintln!(
        "measuring ({} calls of {} repetitions per cell, interleaved)…",
        args.runs, args.repeat
    );
    measure(&mut rules, args)?;
    measure(&mut sets, args)?;

    println!(
        "ns/packet under BPF_PROG_TEST_RUN: min (median) of {} calls x {} repetitions\n",
        args.runs, args.repeat
    );
    println!("| rule set | load (ms) | hit last rule | ratio | no match | ratio |");
    println!("|---|---:|---:|---:|---:|---:|");
    print_rows(&rules);
    println!("\n| set | load (ms) | source in the set | ratio | no match | ratio |");
    println!("|---|---:|---:|---:|---:|---:|");
    print_rows(&sets);
    Ok(())
}

fn print_rows(rows: &[Row]) {
    let base: Vec<f64> = rows[0].cells.iter().map(|c| c.2.min()).collect();
    for r in rows {
        let mut line = format!("| {} | {:.0} |", r.name, r.load_ms);
        for (i, (_, _, cell)) in r.cells.iter().enumerate() {
            line.push_str(&format!(
                " {:.1} ({:.1}) | {:.2} |",
                cell.min(),
                cell.median(),
                cell.min() / base[i]
            ));
        }
        println!("{line}");
    }
}

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `bench transport`: the transport matrix, as a Markdown table (and JSON).
pub fn transport(events: u64, json: Option<&std::path::Path>) -> Result<()> {
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
        events,
        c_consumer,
        ..Default::default()
    };
    let rows = xdpwall_bench::transport(&opts, &mut |line| eprintln!("{line}"))?;
    println!("{}", xdpwall_bench::markdown(&rows));
    if let Some(p) = json {
        std::fs::write(p, xdpwall_bench::json(&rows)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
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
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        let r = report::from_json(&text).map_err(|e| {
            crate::exit::usage(format!(
                "{}: not a `bench dataplane --json` result: {e}",
                p.display()
            ))
        })?;
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
