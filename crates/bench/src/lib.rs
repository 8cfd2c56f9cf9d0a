//! Benchmark engines.

pub mod transport;

pub use transport::{json, markdown, transport, Transport, TransportOptions, TransportRow, Wakeup};
