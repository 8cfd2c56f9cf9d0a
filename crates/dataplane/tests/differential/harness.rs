//! Running one rule set and a batch of frames through the real XDP program
//! (BPF_PROG_TEST_RUN) and through `xdpwall-reference`, and comparing the
//! verdict, the deciding rule, the malformed reason and, after the batch,
//! every counter.

use std::cell::RefCell;
use std::fmt::Write as _;

use xdpwall_dataplane::load::{load, LoadOptions};
use xdpwall_dataplane::stats::{self, Stats};
use xdpwall_dataplane::types::xw_info;
use xdpwall_dataplane::Instance;
use xdpwall_reference::{classify, parse, Buckets, Counter, Outcome, Reason, Tally};
use xdpwall_rules::{compile, Config, Verdict};

use crate::gen::config_of;

use xdpwall_dataplane::testrun::{Verdict as Run, XDP_DROP, XDP_PASS, XDP_REDIRECT};
use xdpwall_reference::Verdict as RefVerdict;

/// A config compiled and loaded with tracing (so runs report the rule).
pub struct Loaded {
    pub toml: String,
    pub cfg: Config,
    pub inst: Instance,
    /// Some candidate list overflowed: the program uses its bitmap scan.
    pub overflow: bool,
    /// Matches each rate-limit bucket has seen since the load.
    pub buckets: RefCell<Buckets>,
}

fn xdp_of(v: Verdict) -> u32 {
    match v {
        Verdict::Pass => 2,
        Verdict::Drop => 1,
    }
}

impl Loaded {
    /// Reads, compiles and loads `toml`.
    pub fn new(toml: &str) -> Result<Self, String> {
        let cfg = config_of(toml);
        // IPv4 prefixes over /16 are answered by lone entries and trie
        // nodes within their budgets and by the exact-match tables beyond
        // them: vary the budgets with the config so all three, and their
        // mix, meet the reference.
        let limits = compile::Limits {
            nodes4: [0, 3, compile::limits::MAX_NODES4][toml.len() % 3],
            lone4: [0, 2, compile::abi::DIR_ENTRIES][toml.len() / 3 % 3],
            ..compile::Limits::default()
        };
        let c = compile::compile_with(&cfg, &limits)
            .map_err(|e| format!("compile refused a valid config: {e}"))?;
        // And the parser: the fast path for untagged IPv4 TCP/UDP, or the
        // general parser alone (as for rule sets that log), both against
        // the reference. One case in five loads the program as compiled,
        // without its configuration folded in.
        let inst = load(
            &c,
            LoadOptions {
                trace: true,
                general_parser: (toml.len() / 3) % 2 == 1,
                no_fold: (toml.len() / 7).is_multiple_of(5),
                ..Default::default()
            },
        )
        .map_err(|e| format!("load: {e}\n--- config ---\n{toml}"))?;
        // `stats::read` takes the rule count and policies from xw_info,
        // which whoever runs the program writes (as `xdpwall run` does).
        let info = xw_info {
            magic: 0x7877_616c_6c30_3031,
            pid: u64::from(std::process::id()),
            default_action: xdp_of(cfg.xdp.default),
            malformed_action: xdp_of(cfg.xdp.malformed),
            nrules: u32::try_from(cfg.rules.len()).expect("rules"),
            ..Default::default()
        };
        inst.set_info(&info)
            .map_err(|e| format!("write xw_info: {e}"))?;
        Ok(Loaded {
            toml: toml.to_string(),
            cfg,
            inst,
            overflow: c.classes.iter().any(|k| k.overflow),
            buckets: RefCell::new(Buckets::new()),
        })
    }

    fn stats(&self) -> Result<Stats, String> {
        stats::read(&self.inst).map_err(|e| format!("read stats: {e}"))
    }
}

thread_local! {
    /// Seconds spent compiling + loading, and running batches.
    pub static TIMES: RefCell<(f64, f64)> = const { RefCell::new((0.0, 0.0)) };

    /// The last program loaded: proptest's shrinking reruns the same rule
    /// set with fewer packets many times, and a load costs ~100 ms.
    static LAST: RefCell<Option<Loaded>> = const { RefCell::new(None) };
}

/// Runs `f` with the program for `toml`, loading it unless it is the last.
pub fn with_loaded<T>(
    toml: &str,
    f: impl FnOnce(&Loaded) -> Result<T, String>,
) -> Result<T, String> {
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.as_ref().is_none_or(|l| l.toml != toml) {
            *last = None; // free the old program first
            let t = std::time::Instant::now();
            *last = Some(Loaded::new(toml)?);
            TIMES.with(|x| x.borrow_mut().0 += t.elapsed().as_secs_f64());
        }
        let t = std::time::Instant::now();
        let r = f(last.as_ref().expect("loaded"));
        TIMES.with(|x| x.borrow_mut().1 += t.elapsed().as_secs_f64());
        r
    })
}

/// What a batch showed, for the coverage report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Coverage {
    pub packets: u64,
    /// Decided by a terminal rule.
    pub by_rule: u64,
    pub by_default: u64,
    pub malformed: [u64; 4],
    /// Count-rule hits.
    pub counted: u64,
    /// Well-formed IP packets, of which non-first fragments.
    pub ip: u64,
    pub non_first: u64,
    /// Batches run in the bitmap-scan mode.
    pub scan_batches: u64,
    /// Decided by a `redirect` rule; by a `rate_limit` rule, of which over
    /// the limit.
    pub redirected: u64,
    pub rate_limited: u64,
    pub over_limit: u64,
}

impl Coverage {
    pub fn add(&mut self, o: &Coverage) {
        self.packets += o.packets;
        self.by_rule += o.by_rule;
        self.by_default += o.by_default;
        for i in 0..4 {
            self.malformed[i] += o.malformed[i];
        }
        self.counted += o.counted;
        self.ip += o.ip;
        self.non_first += o.non_first;
        self.scan_batches += o.scan_batches;
        self.redirected += o.redirected;
        self.rate_limited += o.rate_limited;
        self.over_limit += o.over_limit;
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn rule_name(cfg: &Config, r: Option<usize>) -> String {
    r.map_or_else(
        || "default".to_string(),
        |r| {
            format!(
                "{} (#{r})",
                cfg.rules.get(r).map_or("?", |x| x.name.as_str())
            )
        },
    )
}

/// The XDP verdicts the reference allows for `want` (one, or pass and
/// drop where a rate limit's timing decides), and whether the data plane's
/// trace flags agree with the verdict it returned.
fn allowed(l: &Loaded, frame: &[u8], want: &Outcome, got: &Run) -> (Vec<u32>, bool) {
    let flags_ok = match &want.verdict {
        RefVerdict::RateLimit => got.limited == (got.xdp == XDP_DROP) && !got.redirect_err,
        _ => !got.limited && !got.redirect_err,
    };
    let xdp = match &want.verdict {
        RefVerdict::Redirect(_) => vec![XDP_REDIRECT],
        RefVerdict::RateLimit => {
            let rule = want.rule.expect("a rate_limit rule decided");
            let must_pass = l.buckets.borrow_mut().judge(&l.cfg, rule, &parse(frame));
            if must_pass == Some(true) {
                vec![XDP_PASS]
            } else {
                vec![XDP_PASS, XDP_DROP]
            }
        }
        v => vec![v.xdp().expect("pass or drop")],
    };
    (xdp, flags_ok)
}

/// Why one frame's results differ, or `None`; also whether the data plane
/// said the packet was over a rate limit.
pub fn compare_one(l: &Loaded, frame: &[u8]) -> Result<(Outcome, bool, Option<String>), String> {
    let want = classify(&l.cfg, frame);
    let got = l
        .inst
        .test_run(frame)
        .map_err(|e| format!("test_run ({} bytes): {e}", frame.len()))?;
    let (want_xdp, flags_ok) = allowed(l, frame, &want, &got);
    let got_rule = got.rule.map(|r| r as usize);
    let got_mal = got
        .malformed
        .map(|m| Reason::from_index(m).map_or_else(|| format!("reason #{m}"), |r| r.name().into()));
    let want_mal = want.malformed.map(|r| r.name().to_string());
    if want_xdp.contains(&got.xdp) && flags_ok && got_rule == want.rule && got_mal == want_mal {
        return Ok((want, got.limited, None));
    }
    let mut m = String::new();
    let _ = writeln!(m, "frame ({} bytes): {}", frame.len(), hex(frame));
    let _ = writeln!(m, "reference parse: {:?}", parse(frame));
    let _ = writeln!(
        m,
        "reference: xdp {want_xdp:?} ({:?}) rule {} malformed {:?} counted {:?}",
        want.verdict,
        rule_name(&l.cfg, want.rule),
        want_mal,
        want.counted
    );
    let _ = writeln!(
        m,
        "data plane: xdp {} rule {} malformed {:?} over limit {} redirect error {}",
        got.xdp,
        rule_name(&l.cfg, got_rule),
        got_mal,
        got.limited,
        got.redirect_err
    );
    Ok((want, got.limited, Some(m)))
}

fn delta(
    after: xdpwall_dataplane::stats::Counter,
    before: xdpwall_dataplane::stats::Counter,
) -> Counter {
    Counter {
        packets: after.packets - before.packets,
        bytes: after.bytes - before.bytes,
    }
}

/// Runs `frames` through `l`: every verdict, then the counters' growth over
/// the batch, against the reference. `Err` describes the first difference.
pub fn check_batch(l: &Loaded, frames: &[Vec<u8>]) -> Result<Coverage, String> {
    let before = l.stats()?;
    let mut tally = Tally::new(&l.cfg);
    // Over-limit drops per rule, as the data plane reported them one by one.
    let mut limited = vec![0u64; l.cfg.rules.len()];
    let mut cov = Coverage {
        scan_batches: u64::from(l.overflow),
        ..Coverage::default()
    };
    for (i, f) in frames.iter().enumerate() {
        let (o, over, diff) = compare_one(l, f)?;
        if let Some(d) = diff {
            return Err(format!(
                "packet {i} of the batch differs:\n{d}--- config ---\n{}",
                l.toml
            ));
        }
        tally.add(&o, f.len());
        if let (true, Some(r)) = (over, o.rule) {
            limited[r] += 1;
        }
        cov.over_limit += u64::from(over);
        match o.verdict {
            RefVerdict::Redirect(_) => cov.redirected += 1,
            RefVerdict::RateLimit => cov.rate_limited += 1,
            _ => {}
        }
        cov.packets += 1;
        match (o.malformed, o.rule) {
            (Some(r), _) => cov.malformed[r as usize] += 1,
            (None, Some(_)) => cov.by_rule += 1,
            (None, None) => cov.by_default += 1,
        }
        cov.counted += o.counted.len() as u64;
        if let Some(ip) = parse(f).ip {
            cov.ip += 1;
            cov.non_first += u64::from(ip.fragment == xdpwall_reference::Fragment::NonFirst);
        }
    }
    let after = l.stats()?;
    let mut bad = Vec::new();
    for (i, want) in tally.rules.iter().enumerate() {
        let (Some(a), Some(b)) = (after.rules.get(i), before.rules.get(i)) else {
            bad.push(format!("rule #{i} missing from stats"));
            continue;
        };
        let got = delta(a.counter, b.counter);
        if got != *want {
            bad.push(format!(
                "rule {} (#{i}, {}): got {got:?}, want {want:?}",
                a.name, a.action
            ));
        }
        let over = a.limited.packets - b.limited.packets;
        if over != limited[i] {
            bad.push(format!(
                "rule {} (#{i}): {over} counted over the limit, {} verdicts said so",
                a.name, limited[i]
            ));
        }
        let errs = a.redirect_errors.packets - b.redirect_errors.packets;
        if errs != 0 {
            bad.push(format!("rule {} (#{i}): {errs} redirect errors", a.name));
        }
    }
    let got = delta(after.default, before.default);
    if got != tally.default {
        bad.push(format!("default: got {got:?}, want {:?}", tally.default));
    }
    for (i, want) in tally.malformed.iter().enumerate() {
        let got = delta(after.malformed[i].1, before.malformed[i].1);
        if got != *want {
            bad.push(format!(
                "malformed {}: got {got:?}, want {want:?}",
                after.malformed[i].0
            ));
        }
    }
    if !bad.is_empty() {
        let shown = if frames.len() <= 20 {
            frames.iter().map(|f| hex(f)).collect::<Vec<_>>().join("\n")
        } else {
            format!("({} frames, not shown)", frames.len())
        };
        return Err(format!(
            "counters differ from the reference after {} frames (every verdict agreed):\n{}\n--- config ---\n{}--- frames ---\n{shown}\n",
            frames.len(),
            bad.join("\n"),
            l.toml,
        ));
    }
    Ok(cov)
}

/// Asserts the data plane and the reference agree on `frame` under `toml`
/// (for the named regression tests).
pub fn assert_agree(toml: &str, frame: &[u8]) {
    let l = Loaded::new(toml).unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = check_batch(&l, &[frame.to_vec()]) {
        panic!("{e}");
    }
}

/// Bytes of a hex string (whitespace ignored).
pub fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
