//! `xdpwall gen`: send generated traffic out of an interface with XDP live
//! frames and report what the generator's own counters say was sent.

use std::io::IsTerminal;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use xdpwall_gen::prog::XDP_TX;
use xdpwall_gen::units::{parse_cpus, parse_duration, parse_rate};
use xdpwall_gen::{AddrRange, FrameSpec, GenOptions, GenProgram, PortRange, Proto, Report};

use crate::cli::GenOpts as GenArgs;
use crate::exit::usage;

fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(usage(format!(
            "`{s}` is not a MAC address (aa:bb:cc:dd:ee:ff)"
        )));
    }
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16)
            .map_err(|_| usage(format!("`{s}` is not a MAC address (aa:bb:cc:dd:ee:ff)")))?;
    }
    Ok(mac)
}

/// The hardware address of `iface` in this network namespace (SIOCGIFHWADDR).
fn iface_mac(iface: &str) -> Result<[u8; 6]> {
    // SAFETY: a plain socket call; the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("socket for SIOCGIFHWADDR");
    }
    // SAFETY: fd is a fresh socket we own.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: a zeroed ifreq is valid; the name is copied in within bounds.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req
        .ifr_name
        .iter_mut()
        .zip(iface.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = s as libc::c_char;
    }
    // SAFETY: req is a valid ifreq for this ioctl.
    let r = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            libc::SIOCGIFHWADDR,
            &mut req,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("reading the MAC address of {iface}"));
    }
    // SAFETY: SIOCGIFHWADDR filled ifru_hwaddr.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, b) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *m = *b as u8;
    }
    Ok(mac)
}

/// Everything checked and built, before anything is loaded.
struct Plan {
    spec: FrameSpec,
    src: AddrRange,
    sport: PortRange,
    opts: GenOptions,
}

fn plan(a: &GenArgs) -> Result<Plan> {
    let inv = |e: xdpwall_gen::Error| usage(format!("xdpwall gen: {e}"));
    let dst: IpAddr = a
        .dst
        .parse()
        .map_err(|_| usage(format!("xdpwall gen: --dst `{}` is not an address", a.dst)))?;
    let src: AddrRange = a.src.parse().map_err(inv)?;
    let src = src.with_step(a.src_step).map_err(inv)?;
    if src.is_v6() != dst.is_ipv6() {
        return Err(usage(format!(
            "xdpwall gen: --src {} and --dst {dst} are of different families",
            a.src
        )));
    }
    let sport: PortRange = a.sport.parse().map_err(inv)?;
    let rate = parse_rate(&a.rate).map_err(inv)?;
    let duration = a
        .duration
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(inv)?;
    // Neither given: ten seconds, like most load tools' default.
    let duration = if duration.is_none() && a.count.is_none() {
        Some(Duration::from_secs(10))
    } else {
        duration
    };
    let cpus = match &a.cpus {
        Some(c) => parse_cpus(c).map_err(inv)?,
        None => xdpwall_gen::run::allowed_cpus()?,
    };
    // Checked here too (run checks again) so a bad list is a usage error
    // before anything is loaded.
    let allowed = xdpwall_gen::run::allowed_cpus()?;
    if let Some(c) = cpus.iter().find(|c| !allowed.contains(c)) {
        return Err(usage(format!(
            "xdpwall gen: CPU {c} is not available to this process (allowed: {allowed:?})"
        )));
    }
    let ifindex = xdpwall_dataplane::instance::ifindex(&a.iface)?;
    let src_mac = match &a.src_mac {
        Some(m) => parse_mac(m)?,
        None => iface_mac(&a.iface)?,
    };
    let dst_mac = match &a.dst_mac {
        Some(m) => parse_mac(m)?,
        None => [0xff; 6],
    };
    let spec = FrameSpec {
        src_mac,
        dst_mac,
        src: src.first,
        dst,
        proto: if a.syn { Proto::TcpSyn } else { Proto::Udp },
        sport: sport.first,
        dport: a.dport,
        size: a.size,
    };
    Ok(Plan {
        spec,
        src,
        sport,
        opts: GenOptions {
            ifindex,
            netns: None,
            cpus,
            batch: a.batch,
            rate,
            duration,
            count: a.count,
            nice: None,
        },
    })
}

fn human(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2} G", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2} M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} k", n / 1e3)
    } else {
        format!("{n:.0} ")
    }
}

fn describe(p: &Plan) -> String {
    let s = &p.spec;
    format!(
        "{}-byte {} {} from {}{} ports {}-{} to {}:{}",
        s.size,
        if s.src.is_ipv6() { "IPv6" } else { "IPv4" },
        if s.proto == Proto::TcpSyn {
            "TCP SYN"
        } else {
            "UDP"
        },
        p.src.first,
        if p.src.count > 1 {
            format!(" (+{} more, step {})", p.src.count - 1, p.src.step)
        } else {
            String::new()
        },
        p.sport.first,
        u32::from(p.sport.first) + p.sport.count - 1,
        s.dst,
        s.dport
    )
}

/// Runs `xdpwall gen`.
pub fn gen(a: &GenArgs) -> Result<()> {
    let p = plan(a)?;
    let frame = p
        .spec
        .build()
        .map_err(|e| usage(format!("xdpwall gen: {e}")))?;
    let prog = GenProgram::load(&p.spec, &p.src, &p.sport, XDP_TX)
        .context("loading the generator (needs root)")?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let rate = p.opts.rate.map_or("as fast as possible".to_string(), |r| {
        format!("{}pps", human(r as f64))
    });
    let limit = match (p.opts.duration, p.opts.count) {
        (Some(d), Some(c)) => format!("for {d:?} or {c} frames"),
        (Some(d), None) => format!("for {d:?}"),
        (None, Some(c)) => format!("{c} frames"),
        (None, None) => String::new(),
    };
    if !a.json {
        eprintln!(
            "xdpwall gen: {} on {} from CPU {:?}, {rate}, {limit} (Ctrl-C stops)",
            describe(&p),
            a.iface,
            p.opts.cpus
        );
    }
    let progress = std::io::stderr().is_terminal() && !a.json;
    let done = AtomicBool::new(false);
    let report = std::thread::scope(|s| -> Result<Report> {
        let h = s.spawn(|| {
            let r = xdpwall_gen::run(&prog, &frame, &p.opts, &stop);
            done.store(true, Ordering::Relaxed);
            r
        });
        // Progress once a second while sending, on a terminal only.
        let t0 = Instant::now();
        let mut last = (t0, 0u64);
        while progress && !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            if last.0.elapsed() >= Duration::from_secs(1) {
                let n: u64 = prog
                    .sent_per_cpu()
                    .unwrap_or_default()
                    .iter()
                    .map(|c| c.packets)
                    .sum();
                let rate = (n - last.1.min(n)) as f64 / last.0.elapsed().as_secs_f64();
                eprint!(
                    "\r  {:>6.1} s  {}pps     ",
                    t0.elapsed().as_secs_f64(),
                    human(rate)
                );
                last = (Instant::now(), n);
            }
        }
        if progress {
            eprintln!();
        }
        h.join()
            .map_err(|_| anyhow::anyhow!("the generator thread panicked"))?
            .map_err(|e| match e {
                // Bad options (a CPU not available, …) are usage errors.
                xdpwall_gen::Error::Invalid(m) => usage(format!("xdpwall gen: {m}")),
                e => anyhow::Error::from(e),
            })
    })?;
    print_report(a, &p, &report)
}

fn print_report(a: &GenArgs, p: &Plan, r: &Report) -> Result<()> {
    if a.json {
        let per_cpu: Vec<_> = r
            .per_cpu
            .iter()
            .map(|(cpu, c)| serde_json::json!({"cpu": cpu, "frames": c.packets, "bytes": c.bytes}))
            .collect();
        let v = serde_json::json!({
            "iface": a.iface,
            "frames": r.sent.packets,
            "bytes": r.sent.bytes,
            "seconds": r.elapsed.as_secs_f64(),
            "pps": r.pps(),
            "wire_bps": r.wire_bps(),
            "tx_dropped": r.tx_dropped,
            "size": p.spec.size,
            "per_cpu": per_cpu,
        });
        println!("{v}");
        return Ok(());
    }
    println!(
        "sent {} frames, {} bytes in {:.3} s: {}pps, {}bit/s on the wire",
        r.sent.packets,
        r.sent.bytes,
        r.elapsed.as_secs_f64(),
        human(r.pps()),
        human(r.wire_bps())
    );
    for (cpu, c) in &r.per_cpu {
        println!("  cpu {cpu}: {} frames", c.packets);
    }
    if r.tx_dropped > 0 {
        println!(
            "{} of them dropped by {} on transmit (tx_dropped; for a veth: its peer runs no native XDP program, or its ring was full)",
            r.tx_dropped, a.iface
        );
    } else {
        println!(
            "{}: tx_dropped 0 (a driver that refuses XDP frames outright is not counted there: a veth delivers only to a peer running native XDP)",
            a.iface
        );
    }
    Ok(())
}
