//! `xdpwall gen`: a traffic generator that needs nothing installed.
//!
//! An XDP program ([`prog::GenProgram`], `bpf/gen.bpf.c`) is run by
//! BPF_PROG_TEST_RUN with live frames (`BPF_F_TEST_XDP_LIVE_FRAMES`, Linux
//! ≥ 5.18): the kernel feeds it copies of one frame template
//! ([`frame::FrameSpec`]), the program rewrites each copy's source address
//! and port from a per-CPU sequence over configured ranges
//! ([`range::AddrRange`], [`range::PortRange`]) and returns `XDP_TX`, which
//! transmits it on the interface named in the run's context. [`run::run`]
//! drives one pinned thread per CPU and reports what the program's own
//! counters say was sent.
//!
//! The same BPF object has counting receivers ([`prog::Receiver`]): a bare
//! `XDP_DROP` (the ceiling for XDP filters in `bench dataplane`) and an
//! `XDP_PASS`. Frames sent by XDP reach a veth peer only when that peer
//! runs a native XDP program.
#![deny(missing_docs)]

#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    missing_docs,
    unsafe_op_in_unsafe_fn,
    unused_imports
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/gen.skel.rs"));
}

pub mod error;
pub mod frame;
pub mod netdev;
pub mod prog;
pub mod range;
pub mod run;
pub mod units;

pub use error::{Error, Result};
pub use frame::{FrameSpec, Proto};
pub use prog::{Count, GenProgram, Receiver};
pub use range::{AddrRange, PortRange};
pub use run::{run, run_with, GenOptions, Report};
