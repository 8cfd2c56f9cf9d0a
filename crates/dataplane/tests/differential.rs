//! Differential tests: random rule sets and random frames through the real
//! XDP program (BPF_PROG_TEST_RUN) and through `xdpwall-reference`, the
//! independent pure-Rust classifier written from DESIGN.md. Each proptest
//! case generates one rule set (1–40 rules; now and then 33–40 sparse rules
//! that overflow candidate lists, or 41–150 rules; three sets; random
//! default and malformed policies), compiles and loads it once, and runs a batch of
//! frames aimed at its prefixes, ports, VLANs, ICMP values and flags; every
//! frame's verdict, deciding rule and malformed reason, then every counter's
//! growth over the batch, must equal the reference's.
//!
//! Budget: a fixed seed and [`CI_CASES`] cases (well under a minute in a
//! debug build). Long mode: `XDPWALL_DIFF_CASES=N` (cases),
//! `XDPWALL_DIFF_PACKETS=N` (frames per case), `XDPWALL_DIFF_SEED=N` (another
//! seed). Run with `--nocapture` to see cases per second and coverage.
//!
//! Needs root: skips when not root, fails under `CI=true`.
//!
//! * `gen` — rule-set strategies, rendered as `rules.toml` text.
//! * `packets` — frame strategies and rendering (etherparse).
//! * `harness` — load, run, compare, counters.
//! * `regressions` — fixed cases, and bugs the random tests found.

#[path = "differential/gen.rs"]
mod gen;
#[path = "differential/harness.rs"]
mod harness;
#[path = "differential/packets.rs"]
mod packets;
#[path = "differential/regressions.rs"]
mod regressions;

use std::cell::RefCell;
use std::time::Instant;

use proptest::collection::vec;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use harness::{check_batch, with_loaded, Coverage};
use packets::{render, Pools};

/// Cases in the default (CI) run.
const CI_CASES: u32 = 32;
/// Frames per case by default.
const PACKETS: usize = 500;
const SEED: u64 = 0x7864_7077_616c_6c01;

fn env_num(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: expected a number")),
    )
}

#[test]
fn random_rule_sets_agree_with_the_reference() {
    if !xdpwall_lab::require_root("random_rule_sets_agree_with_the_reference") {
        return;
    }
    let cases =
        env_num("XDPWALL_DIFF_CASES").map_or(CI_CASES, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let per_case =
        env_num("XDPWALL_DIFF_PACKETS").map_or(PACKETS, |n| usize::try_from(n).unwrap_or(PACKETS));
    let seed = env_num("XDPWALL_DIFF_SEED").unwrap_or(SEED);

    let mut config = Config {
        cases,
        failure_persistence: None,
        max_shrink_time: 300_000,
        ..Config::default()
    };
    config.max_shrink_iters = 10_000;
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );

    let total = RefCell::new(Coverage::default());
    let rules = RefCell::new(0usize);
    let start = Instant::now();
    let strategy = (gen::config(), vec(packets::packet(), per_case));
    let result = runner.run(&strategy, |(spec, pkts)| {
        let toml = spec.toml();
        let cov = with_loaded(&toml, |l| {
            let pools = Pools::of(&l.cfg);
            let frames: Vec<Vec<u8>> = pkts.iter().map(|p| render(p, &pools)).collect();
            check_batch(l, &frames)
        })
        .map_err(TestCaseError::fail)?;
        total.borrow_mut().add(&cov);
        *rules.borrow_mut() += spec.rules.len();
        Ok(())
    });
    let secs = start.elapsed().as_secs_f64();
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, (spec, pkts))) => {
            // proptest shrank the rule set (the batch has a fixed size):
            // find one frame that fails on its own.
            let toml = spec.toml();
            let alone = with_loaded(&toml, |l| {
                let pools = Pools::of(&l.cfg);
                Ok(pkts.iter().find_map(|p| {
                    check_batch(l, &[render(p, &pools)])
                        .err()
                        .map(|e| (p.clone(), e))
                }))
            });
            match alone {
                Ok(Some((p, e))) => panic!(
                    "data plane and reference disagree (seed {seed:#x}); shrunk to {} rules and one frame:\n{e}--- packet spec ---\n{p:?}",
                    spec.rules.len()
                ),
                _ => panic!(
                    "data plane and reference disagree (seed {seed:#x}) over a batch of {} frames, {} rules:\n{reason}",
                    pkts.len(),
                    spec.rules.len()
                ),
            }
        }
        Err(e) => panic!("{e}"),
    }
    let t = *total.borrow();
    eprintln!(
        "differential: {cases} random cases ({} rules, {} frames) in {secs:.1} s: {:.1} cases/s, {:.0} frames/s (seed {seed:#x})",
        rules.borrow(),
        t.packets,
        f64::from(cases) / secs,
        t.packets as f64 / secs
    );
    let (load_s, run_s) = harness::TIMES.with(|x| *x.borrow());
    eprintln!(
        "  compile+load {load_s:.1} s, frames {run_s:.1} s, generating {:.1} s",
        secs - load_s - run_s
    );
    eprintln!(
        "  decided by a rule {}, by default {}, malformed {:?} (truncated, bad_header, ext_too_deep, vlan_too_deep), count hits {}, IP {} of which non-first {}; rule sets in bitmap-scan mode {}",
        t.by_rule, t.by_default, t.malformed, t.counted, t.ip, t.non_first, t.scan_batches
    );
    eprintln!(
        "  decided by redirect {}, by rate_limit {} of which over the limit {}",
        t.redirected, t.rate_limited, t.over_limit
    );
    // The generator must keep aiming at the rules, and reach every reason.
    assert!(
        t.by_rule * 5 >= t.packets,
        "too few frames matched a rule: {t:?}"
    );
    if cases >= CI_CASES {
        assert!(
            t.malformed.iter().all(|&n| n > 0),
            "some malformed reason never came up: {t:?}"
        );
        assert!(
            t.counted > 0 && t.non_first > 0,
            "no count hits or no non-first fragments: {t:?}"
        );
        assert!(
            t.scan_batches > 0,
            "no rule set overflowed a candidate list: {t:?}"
        );
        assert!(
            t.redirected > 0 && t.rate_limited > 0 && t.over_limit > 0,
            "no redirect, rate-limit or over-limit verdicts: {t:?}"
        );
    }
}
