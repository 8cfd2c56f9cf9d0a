//! Outputs for xdpwall events.
//!
//! The event consumer resolves each kernel event record (DESIGN.md, "Event
//! record") into an [`EventView`] and hands it to a [`Sink`]:
//!
//! - [`TerminalSink`]: one `tcpdump -n`-like line per event (`--events -`);
//! - [`JsonSink`]: one JSON object per line with the stable keys of DESIGN.md
//!   (`--events json`);
//! - [`PcapngSink`]: a pcapng file with one Interface Description Block per
//!   interface and an Enhanced Packet Block per event (`--events FILE.pcapng`).
//!
//! [`parse_events_arg`] turns the `--events` argument into a [`SinkKind`] and
//! [`open`] builds the matching sink.
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod clock;
pub mod json;
pub mod metrics;
pub mod pcapng;
mod select;
pub mod summary;
pub mod terminal;
#[cfg(test)]
mod testutil;

pub use clock::rfc3339_nanos;
pub use json::{JsonEvent, JsonSink};
pub use pcapng::PcapngSink;
pub use select::{open, parse_events_arg, SinkKind};
pub use summary::{summarize, PacketSummary};
pub use terminal::TerminalSink;

/// One event as the sinks see it (all names already resolved).
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    /// Wall-clock time of the packet, ns since the Unix epoch (UTC).
    pub ts_unix_ns: u64,
    /// Kernel index of the interface the packet arrived on.
    pub ifindex: u32,
    /// Interface name (`"?"` if unknown).
    pub iface: &'a str,
    /// Receive queue of the packet.
    pub rx_queue: u32,
    /// CPU that ran the XDP program.
    pub cpu: u32,
    /// Rule name; `None` = default action / capture.
    pub rule: Option<&'a str>,
    /// Verdict: `"pass"`, `"drop"`, `"aborted"`, `"tx"` or `"redirect"`.
    pub action: &'a str,
    /// Why the event exists: `"log"`, `"sample"` or `"capture"`.
    pub kind: &'a str,
    /// Original frame length on the wire.
    pub wire_len: u32,
    /// The first `cap_len` bytes of the frame (may be empty, may end
    /// mid-header).
    pub data: &'a [u8],
}

/// An output for events.
pub trait Sink {
    /// Writes one event.
    fn write(&mut self, ev: &EventView<'_>) -> std::io::Result<()>;
    /// Pushes buffered output to its destination; also called at exit.
    fn flush(&mut self) -> std::io::Result<()>;
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn write(&mut self, ev: &EventView<'_>) -> std::io::Result<()> {
        (**self).write(ev)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        (**self).flush()
    }
}
