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
use xdpwall_rules::synth::{mixed_rules_toml, set_file_lines, TARGET_DPORT, TARGET_SRC};
use xdpwall_rules::load_config;

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

fn median_ns(inst: &Instance, pkt: &[u8], repeat: u32, runs: usize) -> Result<(f64, u32)> {
    let mut v = Vec::with_capacity(runs);
    let mut verdict = 0;
    for _ in 0..runs {
        let (ret, d) = inst.time_run(pkt, repeat)?;
        verdict = ret;
        v.push(d.as_nanos() as f64);
    }
    v.sort_by(f64::total_cmp);
    Ok((v[v.len() / 2], verdict))
}

struct Row {
    name: String,
    load_ms: f64,
    hit_ns: f64,
    miss_ns: f64,
}

fn measure(name: &str, path: &PathBuf, args: &ClassifyArgs) -> Result<Row> {
    let t = Instant::now();
    let cfg = load_config(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let c = compile(&cfg)?;
    let inst = load(&c, LoadOptions::default()).with_context(|| format!("loading {name}"))?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let hit = udp(TARGET_SRC, TARGET_DPORT);
    let miss = udp([198, 51, 100, 1], 4242);
    let (hit_ns, v1) = median_ns(&inst, &hit, args.repeat, args.runs)?;
    let (miss_ns, v2) = median_ns(&inst, &miss, args.repeat, args.runs)?;
    anyhow::ensure!(v1 == 1 && v2 == 2, "{name}: probe verdicts {v1}/{v2}, expected drop/pass");
    Ok(Row { name: name.into(), load_ms, hit_ns, miss_ns })
}

/// Runs the classify benchmark and prints a Markdown table.
pub fn classify(args: &ClassifyArgs) -> Result<()> {
    if std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").is_ok_and(|s| s.trim() != "0") {
        eprintln!("warning: kernel.bpf_stats_enabled=1 adds time to every run; figures are inflated");
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

    eprintln!("measuring (repeat {} x {} runs per cell)…", args.repeat, args.runs);
    let rows = [
        measure("1 rule", &one, args)?,
        measure(&format!("{} mixed rules", args.rules), &many, args)?,
        measure("empty set + 1 rule", &empty_set, args)?,
        measure(&format!("{}-entry set + 1 rule", args.set_entries), &set, args)?,
    ];
    let base = &rows[0];
    println!("| rule set | load (ms) | hit last rule (ns/pkt) | ratio | no match (ns/pkt) | ratio |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.1} | {:.2} | {:.1} | {:.2} |",
            r.name, r.load_ms, r.hit_ns, r.hit_ns / base.hit_ns, r.miss_ns, r.miss_ns / base.miss_ns
        );
    }
    let (e, s) = (&rows[2], &rows[3]);
    println!(
        "\nset of {} entries vs empty set: hit {:.2}x, no match {:.2}x",
        args.set_entries,
        s.hit_ns / e.hit_ns,
        s.miss_ns / e.miss_ns
    );
    Ok(())
}

struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
