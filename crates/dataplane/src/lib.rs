//! xdpwall's data plane from user space: the XDP program (built from `bpf/`
//! into a skeleton), filling its maps from compiled rules, attaching, finding
//! a running instance, reading its counters, and test runs.
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
    include!(concat!(env!("OUT_DIR"), "/xdpwall.skel.rs"));
}

#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    missing_docs,
    unsafe_op_in_unsafe_fn,
    unused_imports
)]
mod xdperr_skel {
    include!(concat!(env!("OUT_DIR"), "/xdperr.skel.rs"));
}

pub mod attach;
pub mod error;
pub mod fold;
pub mod instance;
pub mod kernel;
pub mod load;
mod pod;
mod slots;
pub mod stats;
mod tables;
pub mod tap;
pub mod testrun;
pub mod update;
pub mod xdperr;

pub use error::{Error, Result};
pub use instance::Instance;

/// The ABI structs, generated from the program's BTF.
pub mod types {
    pub use crate::skel::types::{
        xw_actstat, xw_class, xw_counter, xw_direct, xw_event, xw_first, xw_info, xw_lone4,
        xw_lpm4, xw_lpm6, xw_node4, xw_rl_key, xw_rule, xw_span, xw_tables, xw_tap, xw_trace,
        xw_wake,
    };
}
