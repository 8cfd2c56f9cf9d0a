//! `bench dataplane`: the receive-side drop rate of xdpwall against a bare
//! `XDP_DROP` (the ceiling), xdp-filter, nftables, iptables and the kernel
//! with no filter, on a veth pair fed by `xdpwall gen`, in one run.
//!
//! A lab (two namespaces joined by a veth pair, IPv6 off so the stack adds
//! no frames) carries the traffic: the generator transmits on `a`'s end,
//! the receiver under test runs on `b`'s. Frames sent with live frames
//! reach a veth only when it runs a native XDP program, so rows without an
//! XDP filter of their own attach a counting `XDP_PASS` there.
//!
//! Per repetition and row: set the receiver up, send for a warm-up, then
//! sample the receiving veth's `rx_packets` (every frame its NAPI loop
//! took off the ring, whatever the verdict) at the start and end of the
//! window while the generator keeps sending, and tear the receiver down.
//! Rows are interleaved over the repetitions so drift hits all alike. The
//! filter's own drop counter is read around each run to prove the frames
//! were dropped by its rule.

mod receivers;
pub mod report;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use xdpwall_dataplane::load::{load, LoadOptions};
use xdpwall_gen::netdev::link_stats;
use xdpwall_gen::prog::XDP_TX;
use xdpwall_gen::{run_with, AddrRange, FrameSpec, GenOptions, GenProgram, PortRange, Proto};
use xdpwall_lab::{Lab, LabOptions};
use xdpwall_rules::compile::compile;
use xdpwall_rules::load_config;
use xdpwall_rules::synth::{mixed_rules_toml, set_file_lines};

use receivers::{installed, needs, Active, Kind, FLOW_DPORT, FLOW_SRC};

/// Options of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataplaneOptions {
    /// Repetitions per row (median and spread are over these).
    pub reps: usize,
    /// Measured window per repetition.
    #[serde(serialize_with = "secs", deserialize_with = "from_secs")]
    pub window: Duration,
    /// Sending before the window opens (caches, NAPI, page pool settle).
    #[serde(serialize_with = "secs", deserialize_with = "from_secs")]
    pub warmup: Duration,
    /// CPUs of the generator, one thread each.
    pub cpus: Vec<usize>,
    /// Frame size (Ethernet header to end of payload).
    pub size: usize,
    /// Rules of the large rule set.
    pub rules: usize,
    /// Entries of the large CIDR set.
    pub set_entries: usize,
    /// Also measure each program's ns/frame with `kernel.bpf_stats_enabled`
    /// (a separate pass; the setting is restored afterwards).
    pub bpf_stats: bool,
    /// Only the rows whose names contain one of these (case-insensitive);
    /// all when empty. The bare XDP_DROP row, the reference, always runs.
    #[serde(default)]
    pub rows: Vec<String>,
}

impl DataplaneOptions {
    /// Whether the row called `name` is to be measured.
    #[must_use]
    pub fn wants(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        self.rows.is_empty()
            || name.starts_with("xdp_drop")
            || self.rows.iter().any(|r| name.contains(&r.to_lowercase()))
    }
}

fn from_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let v = f64::deserialize(d)?;
    Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// One repetition of one row.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Sample {
    /// Frames the receiver processed per second (millions), in the window.
    pub mpps: f64,
    /// Frames the generator sent per second (millions), in the window.
    pub sent_mpps: f64,
    /// Of the frames the receiver took over the whole run, the share its
    /// filter's own counter says it dropped (None: no filter to ask).
    pub dropped_share: Option<f64>,
}

/// Per-program cost from `kernel.bpf_stats_enabled` (run_time_ns / run_cnt).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ProgCost {
    /// The receiver's XDP program, ns per frame.
    pub receiver_ns: Option<f64>,
    /// The generator's program, ns per frame.
    pub generator_ns: f64,
}

/// One row of the result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataplaneRow {
    /// What received.
    pub name: String,
    /// Why it was not measured, if it was not.
    pub skipped: Option<String>,
    /// The repetitions.
    pub samples: Vec<Sample>,
    /// From the bpf_stats pass, if run.
    pub cost: Option<ProgCost>,
}

/// Median, min and max of `v` (None when empty).
pub(crate) fn spread(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((med, v[0], v[n - 1]))
}

impl DataplaneRow {
    fn stat(&self, f: impl Fn(&Sample) -> f64) -> Option<(f64, f64, f64)> {
        spread(self.samples.iter().map(f).collect())
    }

    /// Median, min and max of the receive rate (Mpps).
    #[must_use]
    pub fn mpps(&self) -> Option<(f64, f64, f64)> {
        self.stat(|s| s.mpps)
    }

    /// Median, min and max of the send rate (Mpps).
    #[must_use]
    pub fn sent_mpps(&self) -> Option<(f64, f64, f64)> {
        self.stat(|s| s.sent_mpps)
    }
}

/// The whole result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataplaneReport {
    /// What was asked.
    pub options: DataplaneOptions,
    /// `uname -r`.
    pub kernel: String,
    /// The receivers, the bare XDP_DROP first.
    pub rows: Vec<DataplaneRow>,
    /// The generator alone: its send rate into a veth whose peer runs no
    /// XDP program (the veth refuses the frames at once).
    pub generator_alone: DataplaneRow,
}

/// A row to measure: its receiver and the traffic that hits its drop rule.
struct Plan {
    name: String,
    kind: Option<Kind>,
    /// Traffic index: 0 the flow (one source), 1 sources across the set.
    traffic: usize,
    skipped: Option<String>,
    samples: Vec<Sample>,
    cost: Option<ProgCost>,
}

/// The lab's generator programs and frames.
struct Traffic {
    progs: Vec<(GenProgram, Vec<u8>)>,
}

fn traffic(lab: &Lab, opts: &DataplaneOptions) -> Result<Traffic> {
    let (a, b) = (lab.a(), lab.b());
    let spec = |src: IpAddr| FrameSpec {
        src_mac: a.mac(),
        dst_mac: b.mac(),
        src,
        dst: IpAddr::V4(b.ipv4()),
        proto: Proto::Udp,
        sport: 1024,
        dport: FLOW_DPORT,
        size: opts.size,
    };
    let sports = PortRange {
        first: 1024,
        count: 64512,
    };
    let flow_src = AddrRange::single(IpAddr::V4(Ipv4Addr::from(FLOW_SRC)));
    // The set file's entries are 100.64.0.0 + 3i (each a /32 or a /31
    // holding it): every third address from there is inside the set.
    let set_src = AddrRange {
        first: IpAddr::V4(Ipv4Addr::new(100, 64, 0, 0)),
        count: u32::try_from(opts.set_entries.max(1)).unwrap_or(u32::MAX),
        step: 1,
    }
    .with_step(3)?;
    let mut progs = Vec::new();
    for src in [flow_src, set_src] {
        let s = spec(src.first);
        progs.push((GenProgram::load(&s, &src, &sports, XDP_TX)?, s.build()?));
    }
    Ok(Traffic { progs })
}

/// Loads xdpwall for a config text (and an optional set file) written into `dir`.
fn xdpwall(
    dir: &Path,
    name: &str,
    toml: &str,
    set: Option<&str>,
) -> Result<Box<xdpwall_dataplane::Instance>> {
    if let Some(lines) = set {
        std::fs::write(dir.join("set.txt"), lines)?;
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml)?;
    let cfg = load_config(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let c = compile(&cfg)?;
    Ok(Box::new(
        load(&c, LoadOptions::default()).with_context(|| format!("loading {name}"))?,
    ))
}

fn plans(dir: &Path, opts: &DataplaneOptions, progress: &mut dyn FnMut(&str)) -> Result<Vec<Plan>> {
    let plan = |name: String, kind: Kind, traffic: usize| Plan {
        name,
        kind: Some(kind),
        traffic,
        skipped: None,
        samples: Vec::new(),
        cost: None,
    };
    let mut v = vec![plan("XDP_DROP (bare program)".into(), Kind::Bare, 0)];
    // A variant that separates xdpwall's fixed cost (parse, counters, the
    // tap check) from classification: no rules, the default drops.
    let name = "xdpwall, no rules, default drop";
    if opts.wants(name) {
        progress("loading xdpwall with no rules (default drop)…");
        let inst = xdpwall(dir, "norules", "[xdp]\ndefault = \"drop\"\n", None)?;
        v.push(plan(name.into(), Kind::Xdpwall(inst, true), 0));
    }
    for n in [1, 100, opts.rules] {
        let name = format!("xdpwall, {n} rule{}", if n == 1 { "" } else { "s" });
        if !opts.wants(&name) {
            continue;
        }
        progress(&format!("loading xdpwall with {n} rules…"));
        let inst = xdpwall(dir, &format!("rules{n}"), &mixed_rules_toml(n, 1), None)?;
        v.push(plan(name, Kind::Xdpwall(inst, false), 0));
    }
    let name = format!("xdpwall, {}-entry CIDR set", opts.set_entries);
    if opts.wants(&name) {
        progress(&format!(
            "loading xdpwall with a {}-entry set…",
            opts.set_entries
        ));
        let set_toml = "[sets]\nbig = { file = \"set.txt\" }\n\n[[rule]]\nname = \"big-set\"\nsrc = \"@big\"\naction = \"drop\"\n";
        let inst = xdpwall(
            dir,
            "set",
            set_toml,
            Some(&set_file_lines(opts.set_entries, 1)),
        )?;
        v.push(plan(name, Kind::Xdpwall(inst, false), 1));
    }
    v.push(plan(
        "xdp-filter, all features (as `xdp-filter load`)".into(),
        Kind::XdpFilter("all"),
        0,
    ));
    v.push(plan(
        "xdp-filter, UDP only (`-f udp`)".into(),
        Kind::XdpFilter("udp"),
        0,
    ));
    v.push(plan("nftables, netdev ingress".into(), Kind::Nft, 0));
    v.push(plan(
        "iptables (nf_tables), raw PREROUTING".into(),
        Kind::Iptables("iptables-nft"),
        0,
    ));
    v.push(plan(
        "iptables-legacy, raw PREROUTING".into(),
        Kind::Iptables("iptables-legacy"),
        0,
    ));
    v.push(plan(
        "no filter (XDP_PASS, the stack drops)".into(),
        Kind::NoFilter,
        0,
    ));
    v.retain(|p| opts.wants(&p.name));
    for p in &mut v {
        if let Some((tool, pkg)) = p.kind.as_ref().and_then(needs) {
            if !installed(tool) {
                p.skipped = Some(format!(
                    "{tool} not installed (package {pkg}; `XDPWALL_SETUP_BENCH=1 scripts/setup.sh` installs it)"
                ));
            }
        }
    }
    Ok(v)
}

/// Sends for warm-up + window and returns the window's rates and the run's
/// counters. `receiver` is read before and after for its drop counter.
fn measure(
    lab: &Lab,
    gen: &(GenProgram, Vec<u8>),
    opts: &DataplaneOptions,
    receiver: Option<&Active<'_>>,
) -> Result<Sample> {
    let b = lab.b();
    let rx = || link_stats(Some(b.ns().path()), b.ifindex()).map(|s| s.rx_packets);
    let sent = || -> u64 {
        gen.0
            .sent_per_cpu()
            .unwrap_or_default()
            .iter()
            .map(|c| c.packets)
            .sum()
    };
    let dropped_before = receiver.map(|r| r.dropped(b)).transpose()?.flatten();
    let rx_before = rx()?;
    let stop = AtomicBool::new(false);
    let (mut s0, mut s1) = (None, None);
    let mut err = None;
    let end = opts.warmup + opts.window;
    let mut tick = |t: Duration| {
        let sample = |err: &mut Option<xdpwall_gen::Error>| match rx() {
            Ok(r) => Some((Instant::now(), r, sent())),
            Err(e) => {
                *err = Some(e);
                stop.store(true, Ordering::Relaxed);
                None
            }
        };
        if s0.is_none() && t >= opts.warmup {
            s0 = sample(&mut err);
        } else if s0.is_some() && s1.is_none() && t >= end {
            s1 = sample(&mut err);
            stop.store(true, Ordering::Relaxed);
        }
    };
    let gopts = GenOptions {
        ifindex: lab.a().ifindex(),
        netns: Some(lab.a().ns().path().to_path_buf()),
        cpus: opts.cpus.clone(),
        batch: 64,
        rate: None,
        // A backstop only: the tick stops the run once the window closed.
        duration: Some(end + Duration::from_secs(5)),
        count: None,
        // This machine is shared: keep the sender's (and so the receiver's) CPU share.
        nice: Some(-20),
    };
    run_with(&gen.0, &gen.1, &gopts, &stop, &mut tick)?;
    if let Some(e) = err {
        return Err(e.into());
    }
    let (Some((t0, r0, g0)), Some((t1, r1, g1))) = (s0, s1) else {
        anyhow::bail!("the generator stopped before the window closed");
    };
    // Another CPU's NAPI may still be draining the ring.
    let mut rx_after = rx()?;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(2));
        let r = rx()?;
        if r == rx_after {
            break;
        }
        rx_after = r;
    }
    let dropped_after = receiver.map(|r| r.dropped(b)).transpose()?.flatten();
    let dt = (t1 - t0).as_secs_f64();
    let taken = rx_after - rx_before;
    Ok(Sample {
        mpps: (r1 - r0) as f64 / dt / 1e6,
        sent_mpps: (g1 - g0) as f64 / dt / 1e6,
        dropped_share: dropped_before
            .zip(dropped_after)
            .map(|(a, z)| (z - a) as f64 / (taken.max(1)) as f64),
    })
}

/// Sets `kernel.bpf_stats_enabled` and restores the old value on drop.
struct BpfStats(String);

impl BpfStats {
    const PATH: &'static str = "/proc/sys/kernel/bpf_stats_enabled";

    fn enable() -> Result<Self> {
        let old =
            std::fs::read_to_string(Self::PATH).context("reading kernel.bpf_stats_enabled")?;
        std::fs::write(Self::PATH, "1").context("enabling kernel.bpf_stats_enabled")?;
        Ok(BpfStats(old.trim().to_string()))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(Self::PATH, &self.0) {
            eprintln!("cannot restore kernel.bpf_stats_enabled={}: {e}", self.0);
        }
    }
}

/// run_time_ns and run_cnt of a program.
fn prog_runtime(fd: i32) -> Result<(u64, u64)> {
    use libbpf_rs::libbpf_sys;
    // SAFETY: a zeroed bpf_prog_info is valid; the kernel fills up to len.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: info and len are valid for the call.
    let r = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
    if r < 0 {
        anyhow::bail!(
            "bpf_prog_get_info_by_fd: {}",
            std::io::Error::from_raw_os_error(-r)
        );
    }
    Ok((info.run_time_ns, info.run_cnt))
}

/// The fd of the XDP program attached to the receiving veth.
fn attached_prog(lab: &Lab) -> Result<Option<std::os::fd::OwnedFd>> {
    let idx = lab.b().ifindex();
    let cur = lab
        .b()
        .ns()
        .run(|| xdpwall_dataplane::attach::current(idx))??;
    let Some(cur) = cur else { return Ok(None) };
    // SAFETY: plain syscall wrapper.
    let fd = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_fd_by_id(cur.prog_id) };
    if fd < 0 {
        anyhow::bail!(
            "opening program {}: {}",
            cur.prog_id,
            std::io::Error::from_raw_os_error(-fd)
        );
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(Some(unsafe {
        <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
    }))
}

/// One measurement with per-program run-time statistics on.
fn measure_cost(
    lab: &Lab,
    gen: &(GenProgram, Vec<u8>),
    opts: &DataplaneOptions,
    active: Option<&Active<'_>>,
) -> Result<ProgCost> {
    use std::os::fd::AsRawFd;
    let recv = attached_prog(lab)?;
    let gfd = gen.0.fd().as_raw_fd();
    let rb = recv
        .as_ref()
        .map(|f| prog_runtime(f.as_raw_fd()))
        .transpose()?;
    let gb = prog_runtime(gfd)?;
    measure(lab, gen, opts, active)?;
    let ra = recv
        .as_ref()
        .map(|f| prog_runtime(f.as_raw_fd()))
        .transpose()?;
    let ga = prog_runtime(gfd)?;
    let per =
        |(t0, c0): (u64, u64), (t1, c1): (u64, u64)| (t1 - t0) as f64 / (c1 - c0).max(1) as f64;
    Ok(ProgCost {
        receiver_ns: rb.zip(ra).map(|(b, a)| per(b, a)),
        generator_ns: per(gb, ga),
    })
}

/// Runs the benchmark; `progress` gets a line per step.
///
/// # Errors
/// The lab, xdpwall's own loading, or a measurement fails. A peer that is
/// missing is skipped; one whose set-up fails is reported in its row.
pub fn dataplane(
    opts: &DataplaneOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<DataplaneReport> {
    anyhow::ensure!(opts.reps > 0, "at least one repetition");
    let dir = std::env::temp_dir().join(format!("xdpwall-bench-dp-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = RemoveDir(dir.clone());
    let lab = Lab::new(LabOptions::default().ipv6(false)).context("building the lab")?;
    let traffic = traffic(&lab, opts)?;
    let mut plans = plans(&dir, opts, progress)?;
    let mut alone = DataplaneRow {
        name: "generator alone (peer runs no XDP: the veth refuses the frames)".into(),
        skipped: None,
        samples: Vec::new(),
        cost: None,
    };
    for rep in 1..=opts.reps {
        progress(&format!("repetition {rep}/{}", opts.reps));
        alone
            .samples
            .push(measure(&lab, &traffic.progs[0], opts, None).map(|mut s| {
                s.mpps = s.sent_mpps;
                s
            })?);
        for p in plans.iter_mut().filter(|p| p.skipped.is_none()) {
            let Some(kind) = &p.kind else { continue };
            let active = match kind.set_up(lab.b()) {
                Ok(a) => a,
                Err(e) if needs(kind).is_some() => {
                    p.skipped = Some(format!("set-up failed: {e:#}"));
                    progress(&format!(
                        "  {}: {}",
                        p.name,
                        p.skipped.as_deref().unwrap_or("")
                    ));
                    continue;
                }
                Err(e) => return Err(e.context(format!("setting up {}", p.name))),
            };
            let s = measure(&lab, &traffic.progs[p.traffic], opts, Some(&active));
            active
                .tear_down(lab.b())
                .with_context(|| format!("tearing down {}", p.name))?;
            let s = s.with_context(|| format!("measuring {}", p.name))?;
            progress(&format!(
                "  {:<48} {:6.2} Mpps (sent {:.2})",
                p.name, s.mpps, s.sent_mpps
            ));
            p.samples.push(s);
        }
    }
    if opts.bpf_stats {
        progress("per-program cost with kernel.bpf_stats_enabled=1 (one more window per row)…");
        let _stats = BpfStats::enable()?;
        alone.cost = Some(measure_cost(&lab, &traffic.progs[0], opts, None)?);
        for p in plans.iter_mut().filter(|p| p.skipped.is_none()) {
            let Some(kind) = &p.kind else { continue };
            let active = kind
                .set_up(lab.b())
                .with_context(|| format!("setting up {}", p.name))?;
            let c = measure_cost(&lab, &traffic.progs[p.traffic], opts, Some(&active));
            active.tear_down(lab.b())?;
            p.cost = Some(c?);
        }
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    Ok(DataplaneReport {
        options: opts.clone(),
        kernel,
        rows: plans
            .into_iter()
            .map(|p| DataplaneRow {
                name: p.name,
                skipped: p.skipped,
                samples: p.samples,
                cost: p.cost,
            })
            .collect(),
        generator_alone: alone,
    })
}

struct RemoveDir(std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_select_by_word_and_always_keep_the_reference() {
        let mut o = DataplaneOptions {
            reps: 1,
            window: Duration::from_secs(1),
            warmup: Duration::ZERO,
            cpus: vec![0],
            size: 64,
            rules: 10_000,
            set_entries: 1_000_000,
            bpf_stats: false,
            rows: Vec::new(),
        };
        assert!(o.wants("nftables, netdev ingress"), "no filter: every row");
        o.rows = vec!["10000 Rules".into(), "all features".into()];
        assert!(o.wants("xdpwall, 10000 rules"));
        assert!(o.wants("xdp-filter, all features (as `xdp-filter load`)"));
        assert!(
            o.wants("XDP_DROP (bare program)"),
            "the reference always runs"
        );
        assert!(!o.wants("xdpwall, 1 rule"));
        assert!(!o.wants("nftables, netdev ingress"));
        // An old JSON report without the field still reads.
        let j = r#"{"reps":1,"window":1.0,"warmup":0.0,"cpus":[0],"size":64,"rules":1,"set_entries":1,"bpf_stats":false}"#;
        let back: DataplaneOptions = serde_json::from_str(j).expect("old options");
        assert!(back.rows.is_empty());
    }
}
