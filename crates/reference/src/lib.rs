//! A reference classifier for xdpwall: frame parsing and rule matching in
//! plain, safe Rust, written from DESIGN.md ("Rule model", "Parsing",
//! "Address conditions") and nothing else of the project but the config
//! model of [`xdpwall_rules`]. It does not use the rule compiler, BPF or the
//! data plane, so it can judge them: the differential tests of the data-plane
//! crate run random rule sets and random frames through both and compare the
//! verdict, the deciding rule, the malformed reason and every counter.
//!
//! * [`parse`] — Ethernet, up to two VLAN tags, IPv4, IPv6 and its extension
//!   headers, TCP, UDP, SCTP, ICMP, ICMPv6: the facts rules can see, or the
//!   [`Reason`] a frame could not be parsed far enough.
//! * [`classify`] — first terminal match in file order, `count` rules,
//!   default action and malformed policy, giving an [`Outcome`].
//! * [`Tally`] — the counters the data plane should show after a batch.
//! * [`Buckets`] — which `rate_limit` verdicts are certain without a clock
//!   (the first `burst` packets of a bucket pass).
//!
//! Where DESIGN.md does not decide a detail, the reference does what the
//! data plane does (`bpf/parse.h`), and the item says so in its docs
//! ("Not in DESIGN.md").
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod classify;
mod parse;
mod ratelimit;
#[cfg(test)]
mod tests;

pub use classify::{
    addr_matches, classify, classify_parsed, matches, Counter, Outcome, Tally, Verdict,
};
pub use parse::{
    parse, Fragment, Ip, Parsed, Reason, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6,
    MAX_IPV6_EXT, MAX_VLAN_TAGS,
};
pub use ratelimit::Buckets;
