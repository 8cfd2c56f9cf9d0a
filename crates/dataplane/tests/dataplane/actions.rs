//! Protection actions under BPF_PROG_TEST_RUN: `rate_limit` (token bucket
//! per rule or per source, over-limit counters, accuracy against measured
//! time, one limit shared by all CPUs) and `redirect` (XDP_REDIRECT through
//! the devmap; a vanished target drops and is counted).
//!
//! Time-dependent results are never compared with a fixed expectation: the
//! bucket gains `pps` tokens per second, so every bound below is computed
//! from time measured around (upper bound) or inside (lower bound) the runs.

use std::time::{Duration, Instant};

use xdpwall_dataplane::Error;
use xdpwall_rules::{Action, Conditions, RateBy, RateLimit};

use super::fixtures::*;

fn limit(pps: u64, burst: u64, by: RateBy) -> Action {
    Action::RateLimit(RateLimit { pps, burst, by })
}

fn udp_any() -> Conditions {
    Conditions {
        proto: Some(17),
        ..any()
    }
}

/// Tokens a bucket of `pps` gains in `d`, rounded up.
fn gained(pps: u64, d: Duration) -> u64 {
    (pps as u128 * d.as_nanos()).div_ceil(1_000_000_000) as u64
}

/// Runs `n` frames of `p` one by one; returns (passed, elapsed wall time).
fn run_n(fw: &Fw, p: &Pkt, n: usize) -> (Vec<bool>, Duration) {
    let frame = p.bytes();
    let t = Instant::now();
    let passed = (0..n)
        .map(|_| {
            let v = fw.run(&frame);
            assert_eq!(v.rule, Some(0), "the rate-limit rule decides");
            v.xdp == XDP_PASS
        })
        .collect();
    (passed, t.elapsed())
}

#[test]
fn rate_limit_passes_the_burst_then_drops_and_counts() {
    if !root("rate_limit_passes_the_burst_then_drops_and_counts") {
        return;
    }
    // 1 pps: one more token per second; the whole run takes milliseconds.
    let fw = Cfg::new()
        .rule("dns", udp_any(), limit(1, 5, RateBy::Rule))
        .load();
    let p = udp4("192.0.2.1", "192.0.2.2", 1000, 53);
    let (passed, elapsed) = run_n(&fw, &p, 20);
    assert!(
        passed[..5].iter().all(|&x| x),
        "the burst passes: {passed:?}"
    );
    let n_passed = passed.iter().filter(|&&x| x).count() as u64;
    let extra = gained(1, elapsed);
    assert!(
        (5..=5 + extra).contains(&n_passed),
        "{n_passed} passed in {elapsed:?}; the bucket allows 5 + {extra}"
    );
    if extra == 0 {
        assert!(!passed[5], "the packet after the burst drops: {passed:?}");
    }
    let s = fw.stats();
    let r = &s.rules[0];
    assert_eq!(r.action, "rate_limit");
    let len = p.bytes().len() as u64;
    assert_eq!((r.counter.packets, r.counter.bytes), (20, 20 * len));
    assert_eq!(
        (r.limited.packets, r.limited.bytes),
        (20 - n_passed, (20 - n_passed) * len),
        "every dropped packet is counted as over the limit"
    );
    assert_eq!(r.redirect_errors.packets, 0);
    assert_eq!(s.default.packets, 0);
}

#[test]
fn rate_limit_by_src_keeps_a_bucket_per_source_and_rule() {
    if !root("rate_limit_by_src_keeps_a_bucket_per_source_and_rule") {
        return;
    }
    let fw = Cfg::new()
        .rule(
            "dns",
            Conditions {
                dport: port(53),
                ..udp_any()
            },
            limit(1, 2, RateBy::Src),
        )
        .rule("rest", udp_any(), limit(1, 1, RateBy::Src))
        .load();
    let t = Instant::now();
    let mut outcomes = Vec::new();
    // Each source (v4, v6) and each rule: its own full bucket.
    for src in ["192.0.2.1", "192.0.2.9"] {
        for _ in 0..4 {
            outcomes.push(fw.verdict(&udp4(src, "192.0.2.2", 1, 53)).xdp);
        }
    }
    for _ in 0..4 {
        outcomes.push(fw.verdict(&udp6("2001:db8::1", "2001:db8::2", 1, 53)).xdp);
    }
    for _ in 0..3 {
        outcomes.push(fw.verdict(&udp4("192.0.2.1", "192.0.2.2", 1, 54)).xdp);
    }
    let elapsed = t.elapsed();
    if gained(1, elapsed) <= 1 {
        // Less than a second: no bucket refilled a whole token.
        let (d, p) = (XDP_DROP, XDP_PASS);
        let want = [p, p, d, d, p, p, d, d, p, p, d, d, p, d, d];
        if elapsed < Duration::from_secs(1) {
            assert_eq!(outcomes, want, "took {elapsed:?}");
        }
    }
    let s = fw.stats();
    assert_eq!(s.rules[0].counter.packets, 12);
    assert_eq!(s.rules[1].counter.packets, 3);
    let drops = |from: std::ops::Range<usize>| {
        outcomes[from].iter().filter(|&&x| x == XDP_DROP).count() as u64
    };
    assert_eq!(s.rules[0].limited.packets, drops(0..12));
    assert_eq!(s.rules[1].limited.packets, drops(12..15));
}

#[test]
fn rate_limit_by_rule_is_shared_by_all_sources() {
    if !root("rate_limit_by_rule_is_shared_by_all_sources") {
        return;
    }
    let fw = Cfg::new()
        .rule("all", udp_any(), limit(1, 3, RateBy::Rule))
        .load();
    let t = Instant::now();
    let v: Vec<u32> = ["192.0.2.1", "192.0.2.9", "198.51.100.7", "203.0.113.1"]
        .iter()
        .map(|s| fw.verdict(&udp4(s, "192.0.2.2", 1, 53)).xdp)
        .collect();
    if t.elapsed() < Duration::from_secs(1) {
        assert_eq!(v, [XDP_PASS, XDP_PASS, XDP_PASS, XDP_DROP]);
    }
    assert_eq!(
        fw.stats().rules[0].limited.packets,
        u64::from(v[3] == XDP_DROP)
    );
}

/// Runs `repeat` frames in one BPF_PROG_TEST_RUN; returns (kernel time of
/// all runs, wall time of the call).
fn repeat_run(fw: &Fw, frame: &[u8], repeat: u32) -> (Duration, Duration) {
    let t = Instant::now();
    let (_, per) = fw.inst.time_run(frame, repeat).expect("test run");
    (per * repeat, t.elapsed())
}

/// Passed packets of rule 0: matched minus over the limit.
fn passed(fw: &Fw) -> (u64, u64) {
    let s = fw.stats();
    let r = &s.rules[0];
    (r.counter.packets - r.limited.packets, r.counter.packets)
}

#[test]
fn rate_limit_is_accurate_under_a_flood() {
    if !root("rate_limit_is_accurate_under_a_flood") {
        return;
    }
    // The program runs back to back (millions of packets/s offered) under a
    // limit of 1 Mpps, or a quarter of what this CPU offers now if that is
    // less (a loaded machine floods more slowly, and a limit the flood never
    // reaches would test nothing): what passes is the burst plus the tokens
    // gained between the first and the last packet. That interval lies
    // between the kernel's time for the runs and the call's wall time.
    let (burst, repeat) = (1_000, 400_000);
    let frame = udp4("192.0.2.1", "192.0.2.2", 1, 53).bytes();
    let calibrate = Cfg::new()
        .rule(
            "flood",
            udp_any(),
            limit(1_000_000_000, 1_000_000_000, RateBy::Rule),
        )
        .load();
    let (_, wall) = repeat_run(&calibrate, &frame, repeat);
    let offered = (u128::from(repeat) * 1_000_000_000 / wall.as_nanos().max(1)) as u64;
    let pps = (offered / 4).clamp(10_000, 1_000_000);
    let fw = Cfg::new()
        .rule("flood", udp_any(), limit(pps, burst, RateBy::Rule))
        .load();
    let (busy, wall) = repeat_run(&fw, &frame, repeat);
    let (pass, matched) = passed(&fw);
    assert_eq!(matched, u64::from(repeat));
    let lo = burst + gained(pps, busy).saturating_sub(gained(pps, busy / repeat) + 1);
    let hi = burst + gained(pps, wall) + 1;
    assert!(
        (lo..=hi).contains(&pass),
        "{pass} of {repeat} passed at {pps} pps (offered {offered}); want {lo}..={hi} \
         (kernel {busy:?}, wall {wall:?})"
    );
    assert!(
        pass < matched,
        "a flood offered at {offered} pps exceeds {pps} pps"
    );
}

#[test]
fn rate_limit_is_one_limit_for_all_cpus() {
    if !root("rate_limit_is_one_limit_for_all_cpus") {
        return;
    }
    // Two threads flood at once (on two CPUs when the scheduler allows):
    // together they get no more than one bucket's worth. Per-CPU buckets
    // would pass about twice as much.
    let (pps, burst, repeat) = (200_000, 100, 300_000);
    let fw = Cfg::new()
        .rule("flood", udp_any(), limit(pps, burst, RateBy::Rule))
        .load();
    let frame = udp4("192.0.2.1", "192.0.2.2", 1, 53).bytes();
    let t = Instant::now();
    let busy: Vec<Duration> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| s.spawn(|| repeat_run(&fw, &frame, repeat).0))
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let wall = t.elapsed();
    let (pass, matched) = passed(&fw);
    assert_eq!(matched, 2 * u64::from(repeat));
    let longest = busy.iter().max().copied().unwrap_or_default();
    let lo = burst + gained(pps, longest).saturating_sub(gained(pps, longest / repeat) + 1);
    let hi = burst + gained(pps, wall) + 1;
    assert!(
        (lo..=hi).contains(&pass),
        "{pass} passed; want {lo}..={hi} (runs {busy:?}, wall {wall:?})"
    );
}

#[test]
fn rate_limit_table_evicts_least_recent_sources() {
    if !root("rate_limit_table_evicts_least_recent_sources") {
        return;
    }
    // A small table still judges every packet: a source whose bucket was
    // evicted starts again with a full one (documented), never an error.
    let fw = Cfg::new()
        .rate_limit_table(64)
        .rule("dns", udp_any(), limit(1, 1, RateBy::Src))
        .load();
    for i in 0..1000u32 {
        let src = format!("10.{}.{}.1", i / 256, i % 256);
        let v = fw.verdict(&udp4(&src, "192.0.2.2", 1, 53));
        assert_eq!(v.xdp, XDP_PASS, "a new source has a full bucket");
    }
    let s = fw.stats();
    assert_eq!(
        (s.rules[0].counter.packets, s.rules[0].limited.packets),
        (1000, 0)
    );
}

// ---------------------------------------------------------------- redirect

/// A namespace with a veth pair `xwrd0`/`xwrd1` to redirect to.
fn redirect_ns() -> xdpwall_lab::Netns {
    let ns = xdpwall_lab::Netns::new("redir").expect("namespace");
    ns.ip(&[
        "link", "add", "xwrd0", "type", "veth", "peer", "name", "xwrd1",
    ])
    .expect("veth pair");
    ns.ip(&["link", "set", "xwrd0", "up"]).expect("up");
    ns.ip(&["link", "set", "xwrd1", "up"]).expect("up");
    ns
}

#[test]
fn redirect_returns_xdp_redirect_and_a_vanished_target_drops_counted() {
    if !root("redirect_returns_xdp_redirect_and_a_vanished_target_drops_counted") {
        return;
    }
    let ns = redirect_ns();
    let fw = Cfg::new()
        .rule(
            "mirror",
            Conditions {
                dport: port(80),
                ..udp_any()
            },
            Action::Redirect("xwrd0".into()),
        )
        .rule("rest", any(), Action::Pass)
        .load_in(&ns);
    let p = udp4("192.0.2.1", "192.0.2.2", 1, 80);
    let v = fw.verdict(&p);
    assert_eq!(
        (v.xdp, v.rule, v.redirect_err),
        (XDP_REDIRECT, Some(0), false)
    );
    assert_eq!(fw.hit(&udp4("192.0.2.1", "192.0.2.2", 1, 81)), Some("rest"));
    // The kernel empties a devmap slot when its interface goes away.
    ns.ip(&["link", "del", "xwrd0"]).expect("delete the target");
    let v = fw.verdict(&p);
    assert_eq!((v.xdp, v.rule, v.redirect_err), (XDP_DROP, Some(0), true));
    let s = fw.stats();
    assert_eq!(s.rules[0].action, "redirect");
    assert_eq!(s.rules[0].counter.packets, 2);
    let len = p.bytes().len() as u64;
    assert_eq!(
        (
            s.rules[0].redirect_errors.packets,
            s.rules[0].redirect_errors.bytes
        ),
        (1, len)
    );
    assert_eq!(s.rules[0].limited.packets, 0);
}

#[test]
fn redirect_to_a_missing_interface_fails_to_load_naming_both() {
    if !root("redirect_to_a_missing_interface_fails_to_load_naming_both") {
        return;
    }
    let ns = xdpwall_lab::Netns::new("redir-missing").expect("namespace");
    let cfg = Cfg::new().rule("mirror", any(), Action::Redirect("xwnope0".into()));
    let c = xdpwall_rules::compile::compile(&cfg.0).expect("compile");
    let err = ns
        .run(|| {
            xdpwall_dataplane::load::load(&c, xdpwall_dataplane::load::LoadOptions::default())
                .map(|_| ())
        })
        .expect("enter the namespace")
        .expect_err("a missing target must fail the load");
    assert!(matches!(err, Error::NoRedirectTarget { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("`mirror`") && msg.contains("xwnope0") && msg.contains("same namespace"),
        "{msg}"
    );
}

#[test]
fn rate_limit_refills_at_its_rate_across_a_pause() {
    if !root("rate_limit_refills_at_its_rate_across_a_pause") {
        return;
    }
    // Empty the bucket, wait, flood again: the second flood passes what
    // the pause refilled, pps x pause, measured from the end of the first
    // call to the start of the second (lower) and across both (upper).
    let (pps, burst) = (100_000u64, 100_000u64);
    let fw = Cfg::new()
        .rule("flood", udp_any(), limit(pps, burst, RateBy::Rule))
        .load();
    let frame = udp4("192.0.2.1", "192.0.2.2", 1, 53).bytes();
    let t0 = Instant::now();
    let (busy1, _) = repeat_run(&fw, &frame, 200_000);
    let t1 = Instant::now();
    let (p1, _) = passed(&fw);
    std::thread::sleep(Duration::from_millis(300));
    let t2 = Instant::now();
    let (busy2, _) = repeat_run(&fw, &frame, 200_000);
    let t3 = Instant::now();
    let (p2, _) = passed(&fw);
    let second = p2 - p1;
    let (lo, hi) = (
        gained(pps, t2 - t1).saturating_sub(1),
        gained(pps, t3 - t0) + 1,
    );
    eprintln!(
        "first call {p1} in {:?} (kernel {busy1:?}); second {second} (kernel {busy2:?}, wall {:?}); pause {:?}; bounds {lo}..={hi}",
        t1 - t0,
        t3 - t2,
        t2 - t1
    );
    // The first flood passes the burst plus what came in while it ran.
    assert!(
        (burst..=burst + gained(pps, t1 - t0) + 1).contains(&p1),
        "{p1} passed in the first flood"
    );
    assert!((lo..=hi).contains(&second), "{second} not in {lo}..={hi}");
}

#[test]
fn reload_carries_over_limit_counts_by_rule_name() {
    if !root("reload_carries_over_limit_counts_by_rule_name") {
        return;
    }
    let old = Cfg::new()
        .rule(
            "other",
            Conditions {
                dport: port(9),
                ..udp_any()
            },
            Action::Drop,
        )
        .rule("dns", udp_any(), limit(1, 1, RateBy::Rule))
        .load();
    for _ in 0..5 {
        old.verdict(&udp4("192.0.2.1", "192.0.2.2", 1, 53));
    }
    let before = old.stats().rules[1].clone();
    assert!(before.limited.packets >= 1, "{before:?}");
    // The new rule set lists the rule at another id: counts follow the name
    // (the reloaded program shares the counters by name slot).
    let new = old.successor(
        Cfg::new()
            .rule("dns", udp_any(), limit(1, 1, RateBy::Rule))
            .0,
    );
    let after = new.stats().rules[0].clone();
    assert_eq!(
        (after.counter, after.limited),
        (before.counter, before.limited)
    );
}
