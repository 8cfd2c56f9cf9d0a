//! Benchmark engines.

pub mod c_consumer;
pub mod dataplane;
pub mod peers;
pub mod plot;
pub mod transport;

pub use transport::{
    json, markdown, transport, Transport, TransportOptions, TransportReport, TransportRow, Wakeup,
};
