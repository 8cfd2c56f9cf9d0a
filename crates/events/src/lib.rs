//! xdpwall's event stream from the XDP program to user space: one consumer
//! API over the BPF ring buffer and the perf buffer, epoll wake-ups or busy
//! polling, record decoding, and loss accounting.
#![deny(missing_docs)]

pub mod clock;
pub mod consumer;
mod ffi;
pub mod perf;
pub mod record;
pub mod ring;

pub use consumer::{Consumer, ConsumerOptions, Delivery, Poll};
pub use record::{decode, DecodeError, Record};
