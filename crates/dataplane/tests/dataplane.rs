//! Data-plane tests: the real XDP program under BPF_PROG_TEST_RUN on crafted
//! packets (valid, truncated, odd), asserting verdicts, the deciding rule and
//! the counters (DESIGN.md "Tests", layer 2). Every test needs root: it skips
//! when not root, and fails under `CI=true`.
//!
//! * `fixtures` — config and packet builders, a reference matcher, `Fw`.
//! * `parse` — Ethernet/VLAN/IPv4/IPv6 paths, truncation, bad headers, garbage.
//! * `conditions` — every rule condition and first-match semantics.
//! * `counters` — per-rule, default and malformed counters, `count` rules.
//! * `scale` — overflowing candidate lists against the reference; a 100k set.
//! * `actions` — `rate_limit` buckets and counters, `redirect` via the devmap.

#[path = "dataplane/actions.rs"]
mod actions;
#[path = "dataplane/conditions.rs"]
mod conditions;
#[path = "dataplane/counters.rs"]
mod counters;
#[path = "dataplane/fixtures.rs"]
mod fixtures;
#[path = "dataplane/parse.rs"]
mod parse;
#[path = "dataplane/scale.rs"]
mod scale;
#[path = "dataplane/sets.rs"]
mod sets;
