//! Integration tests of the `xdpwall` binary (DESIGN.md "CLI", "Running
//! state", "Tests").
//!
//! * `check` — unprivileged: config validation, error locations, help.
//! * `replay` — BPF_PROG_TEST_RUN over captures written here (needs root).
//! * `lab` — real `run`/`stats`/`detach` in network namespaces with real
//!   traffic (needs root; under `CI=true` a missing privilege fails).
//! * `reload` — `xdpwall reload` against a real `run` (needs root).
//! * `service` — dist/xdpwall@.service: commands, systemd-analyze.
//! * `demo` — the built-in demo end to end (needs root).
//! * `events` — `run --events` with real traffic: JSON lines, terminal
//!   lines and pcapng read back (needs root).
//! * `gen` — usage errors; an exact frame count across a veth pair into a
//!   counting XDP_DROP receiver (needs root).
//! * `top` — the live view in a pseudo-terminal: drop sources from the
//!   tap, keys, the tap turned off on exit or expiring after kill -9.
//! * `xdperr` — `run`'s XDP error tracepoints across reload, kill -9 and
//!   restart, as `stats` reports them.
//! * `protect` — `rate_limit` accuracy and `redirect` between veth pairs
//!   with real traffic (needs root).
//! * `bench` — `bench dataplane` with tiny windows (root; ignored by
//!   default, about 20 s); `bench transport` usage errors and a small run
//!   re-drawn from its JSON (root).
//!
//! Every privileged test builds its own lab, so tests run in parallel; RAII
//! guards stop `run` processes and delete namespaces even when a test fails.

#[path = "cli/fixtures.rs"]
mod fixtures;

#[path = "cli/check.rs"]
mod check;

#[path = "cli/replay.rs"]
mod replay;

#[path = "cli/lab.rs"]
mod lab;

#[path = "cli/reload.rs"]
mod reload;

#[path = "cli/service.rs"]
mod service;

#[path = "cli/demo.rs"]
mod demo;

#[path = "cli/events.rs"]
mod events;

#[path = "cli/metrics.rs"]
mod metrics;

#[path = "cli/gen.rs"]
mod gen;
#[path = "cli/top.rs"]
mod top;

#[path = "cli/protect.rs"]
mod protect;
#[path = "cli/xdperr.rs"]
mod xdperr;

#[path = "cli/bench.rs"]
mod bench;
