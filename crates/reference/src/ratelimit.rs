//! What the reference can tell about `rate_limit` verdicts without a clock.
//!
//! DESIGN.md: packets over the limit are dropped, under it pass. A token
//! bucket's verdict depends on when packets arrive, which the reference does
//! not model; but every bucket starts full, so the first `burst` packets a
//! bucket sees pass, however fast they come. Buckets are one per rule
//! (`by = "rule"`) or one per rule and source address (`by = "src"`; frames
//! that are not IP share one). Not in DESIGN.md: a per-source bucket pushed
//! out of the full table starts full again when its source returns, which
//! only lets more packets pass, so the floor below still holds.

use std::collections::HashMap;
use std::net::IpAddr;

use xdpwall_rules::{Action, Config, RateBy};

use crate::parse::Parsed;

/// Matches seen per bucket, to know which packets must pass.
#[derive(Debug, Default, Clone)]
pub struct Buckets {
    seen: HashMap<(usize, Option<IpAddr>), u64>,
}

impl Buckets {
    /// No packets seen yet (a freshly loaded program: all buckets full).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts one frame decided by rule `rule` of `cfg` and says whether
    /// it must pass (`Some(true)`: within its bucket's burst) or timing
    /// decides (`None`). `None` too when the rule is not a `rate_limit`.
    pub fn judge(&mut self, cfg: &Config, rule: usize, pkt: &Parsed) -> Option<bool> {
        let Some(Action::RateLimit(rl)) = cfg.rules.get(rule).map(|r| &r.action) else {
            return None;
        };
        let src = match rl.by {
            RateBy::Rule => None,
            RateBy::Src => pkt.ip.as_ref().map(|ip| ip.src),
        };
        let n = self.seen.entry((rule, src)).or_insert(0);
        *n += 1;
        (*n <= rl.burst).then_some(true)
    }
}
