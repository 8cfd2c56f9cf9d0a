//! `xdpwall bench ratelimit`: how closely a `rate_limit` rule holds its
//! rate. For each limit the real XDP program gets a flood of `factor` times
//! the limit under BPF_PROG_TEST_RUN, paced in 1 ms steps over a wall-clock
//! window; what passes is compared with what a token bucket allows in that
//! window: `burst + pps × seconds`. The error is `passed / expected − 1`.
//! The bucket holds 100 ms of tokens, so pacing gaps shorter than that
//! waste none (the table shows the longest gap, between or inside calls;
//! a row whose flood stalled longer is measured again, up to 3 times). The window is bracketed by
//! a lone first packet and the last step; `±` is half the bracket's width
//! in tokens, relative to the expected count.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use etherparse::PacketBuilder;
use xdpwall_dataplane::load::{load, LoadOptions};
use xdpwall_dataplane::stats;
use xdpwall_rules::compile::compile;
use xdpwall_rules::parse_config;

/// Options of `bench ratelimit`.
pub struct RateArgs {
    /// Limits to measure (packets/s).
    pub rates: Vec<u64>,
    /// Offered load as a multiple of the limit.
    pub factor: f64,
    /// Seconds per measurement.
    pub seconds: f64,
}

/// One measured row.
struct Row {
    pps: u64,
    by: &'static str,
    burst: u64,
    offered: f64,
    secs: f64,
    /// Half the width of the window's bracket, seconds.
    half: f64,
    max_gap: Duration,
    matched: u64,
    passed: u64,
    expected: f64,
}

fn frame() -> Vec<u8> {
    let mut pkt = Vec::new();
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([198, 51, 100, 1], [198, 51, 100, 2], 64)
        .udp(40_000, 53);
    // Writing into a Vec cannot fail.
    let _ = b.write(&mut pkt, &[0u8; 18]);
    pkt
}

fn measure(pps: u64, by: &'static str, a: &RateArgs) -> Result<Row> {
    // A burst of 100 ms worth of tokens (at least 1). The flood comes in
    // steps (1 ms apart, more when the scheduler is late); a full bucket,
    // or a gap longer than burst / pps, wastes tokens, which is the bucket
    // working as specified, not an error of its arithmetic. So the burst
    // must cover the gaps; `max gap` shows whether it did.
    let burst = (pps / 10).max(1);
    let toml = format!(
        "[[rule]]\nname = \"limit\"\nproto = \"udp\"\n\
         rate_limit = {{ pps = {pps}, burst = {burst}, by = \"{by}\" }}\n"
    );
    let cfg = parse_config(&toml, Path::new("bench-ratelimit.toml"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let inst = load(&compile(&cfg)?, LoadOptions::default()).context("loading the program")?;
    let pkt = frame();
    let offered = pps as f64 * a.factor;
    let window = Duration::from_secs_f64(a.seconds);
    // The window runs from the first packet to the last. Each is sent alone
    // and timed from both sides: the program ran between the call's start
    // and its end, so the span lies between `last_start - first_end` and
    // `last_end - first_start` (a thread preempted around a call widens
    // that bracket, never biases it).
    let first_start = Instant::now();
    inst.time_run(&pkt, 1)?;
    let first_end = Instant::now();
    // Then a burst's worth at once: the bucket starts full, and a full
    // bucket wastes what it gains; emptied, it never fills again while
    // the flood lasts (gaps < 100 ms).
    let drain = u32::try_from(burst).unwrap_or(u32::MAX);
    inst.time_run(&pkt, drain)?;
    let mut sent = 1 + u64::from(drain);
    let mut last = Instant::now();
    let mut max_gap = Duration::ZERO;
    loop {
        let now = first_start.elapsed();
        if now >= window {
            break;
        }
        // Catch up with the schedule, then wait for the next step.
        let due = 1 + u64::from(drain) + (offered * now.as_secs_f64()) as u64;
        if due > sent {
            let n = u32::try_from(due - sent).unwrap_or(u32::MAX);
            let before = Instant::now();
            max_gap = max_gap.max(before - last);
            inst.time_run(&pkt, n)?;
            last = Instant::now();
            // A call the scheduler stalled is a gap too, inside the call.
            max_gap = max_gap.max(last - before);
            sent += u64::from(n);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // The last step catches up like the others (so the bucket ends empty,
    // not holding tokens nobody asked for) and closes the window.
    let now = first_start.elapsed();
    let due = 1 + u64::from(drain) + (offered * now.as_secs_f64()) as u64;
    let n = u32::try_from(due.saturating_sub(sent).max(1)).unwrap_or(u32::MAX);
    let last_start = Instant::now();
    max_gap = max_gap.max(last_start - last);
    inst.time_run(&pkt, n)?;
    let last_end = Instant::now();
    let lo = (last_start - first_end).as_secs_f64();
    let hi = (last_end - first_start).as_secs_f64();
    let secs = (lo + hi) / 2.0;
    let s = stats::read(&inst)?;
    let r = s
        .rules
        .first()
        .context("the rule is missing from the counters")?;
    Ok(Row {
        pps,
        by,
        burst,
        offered: r.counter.packets as f64 / secs,
        secs,
        half: (hi - lo) / 2.0,
        max_gap,
        matched: r.counter.packets,
        passed: r.counter.packets - r.limited.packets,
        expected: burst as f64 + pps as f64 * secs,
    })
}

/// Runs the measurements and prints a Markdown table.
pub fn ratelimit(a: &RateArgs) -> Result<()> {
    // Under the limit everything passes: there would be no error to show.
    if !(a.factor > 1.0 && a.factor <= 1000.0) {
        return Err(crate::exit::usage(format!(
            "--factor {}: the offered load must be above the limit (more than 1, at most 1000)",
            a.factor
        )));
    }
    if !(a.seconds > 0.0 && a.seconds <= 600.0) {
        return Err(crate::exit::usage(format!(
            "--seconds {}: give a window of more than 0 and at most 600 seconds",
            a.seconds
        )));
    }
    if let Some(bad) = a.rates.iter().find(|&&r| r == 0 || r > 100_000_000) {
        return Err(crate::exit::usage(format!(
            "--rates: {bad} pps cannot be measured here; use 1 to 100000000"
        )));
    }
    let mut out = String::from(
        "| limit (pps) | by | burst | offered (pps) | seconds | max gap (ms) | matched | passed | expected | error | ± (window bracket) |\n\
         | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for &pps in &a.rates {
        for by in ["rule", "src"] {
            let mut attempt = 1;
            let r = loop {
                eprintln!("xdpwall: measuring {pps} pps by {by} ({:.1} s)", a.seconds);
                let r = measure(pps, by, a)?;
                // A stall longer than the bucket (100 ms) wastes tokens by
                // design: the row would measure the scheduler. Retry.
                if r.max_gap.as_secs_f64() * r.pps as f64 <= r.burst as f64 || attempt == 3 {
                    break r;
                }
                eprintln!(
                    "xdpwall: the flood stalled for {:.0} ms (more than the bucket holds); measuring again",
                    r.max_gap.as_secs_f64() * 1e3
                );
                attempt += 1;
            };
            let stalled = r.max_gap.as_secs_f64() * r.pps as f64 > r.burst as f64;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {:.3} | {:.1}{} | {} | {} | {:.1} | {:+.3}% | {:.3}% |",
                r.pps,
                r.by,
                r.burst,
                r.offered,
                r.secs,
                r.max_gap.as_secs_f64() * 1e3,
                if stalled { " (stalled: not valid)" } else { "" },
                r.matched,
                r.passed,
                r.expected,
                (r.passed as f64 / r.expected - 1.0) * 100.0,
                r.pps as f64 * r.half / r.expected * 100.0
            );
        }
    }
    print!("{out}");
    Ok(())
}
