//! One consumer over both transports. Records are handed to the caller's
//! callback as they are read, with no queue in between: when the callback
//! (a sink) is slower than the traffic, the kernel's buffer fills and the
//! program counts what it could not emit — memory here stays bounded.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use libbpf_rs::MapHandle;

use crate::perf::PerfBuffer;
use crate::ring::RingBuf;
use xdpwall_dataplane::Instance;
use xdpwall_rules::compile::abi;

use crate::record::{decode, Record};

/// PAUSEs a busy poll waits after finding nothing: the first time, and at
/// most (doubling while it keeps finding nothing).
pub const BUSY_BACKOFF: (u32, u32) = (8, 64);
/// How the consumer waits for records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Sleep in epoll until the kernel wakes us (or the timeout passes).
    Epoll,
    /// Never sleep: read whatever is there, again and again (one CPU spins).
    Busy,
}

/// Consumer settings.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerOptions {
    /// Waiting strategy.
    pub poll: Poll,
    /// Longest epoll sleep: bounds the delivery delay of records that were
    /// written without a wake-up (batched or adaptive wake-ups).
    pub timeout: Duration,
    /// Total buffer size in bytes, for the perf buffer's per-CPU share.
    pub buffer: u64,
    /// Perf buffer: records per wake-up (the ring buffer's policy is the
    /// program's, `[events] wakeup`).
    pub perf_per_wakeup: u32,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self {
            poll: Poll::Epoll,
            timeout: Duration::from_millis(10),
            buffer: 8 << 20,
            perf_per_wakeup: 1,
        }
    }
}

/// What the consumer has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Records decoded and handed to the callback.
    pub delivered: u64,
    /// Samples the perf buffer reported lost (its lost callback).
    pub perf_lost: u64,
    /// Records that did not decode (never expected; counted, not dropped silently).
    pub malformed: u64,
}

#[derive(Default)]
struct Counts {
    delivered: Cell<u64>,
    perf_lost: Cell<u64>,
    malformed: Cell<u64>,
}

enum Inner<'a> {
    Ring(RingBuf<'a>),
    Perf(PerfBuffer<'a>),
}

/// Reads events from an instance's ring buffer or perf buffer.
pub struct Consumer<'a> {
    inner: Inner<'a>,
    counts: Rc<Counts>,
    opts: ConsumerOptions,
    // PAUSEs the next empty busy poll waits.
    backoff: Cell<u32>,
}

/// Consumer errors.
#[derive(Debug, thiserror::Error)]
#[error("event consumer: {what}: {source}")]
pub struct Error {
    what: &'static str,
    #[source]
    source: libbpf_rs::Error,
}

fn err(what: &'static str) -> impl FnOnce(libbpf_rs::Error) -> Error {
    move |source| Error { what, source }
}

fn online_cpus() -> usize {
    libbpf_rs::num_possible_cpus().unwrap_or(1).max(1)
}

/// Pages per CPU for the perf buffer: the buffer split across the possible
/// CPUs (every one gets a buffer), a power of two, at least one page. Public
/// so that a reference consumer (the transport bench's C one) maps exactly
/// what this consumer maps.
#[must_use]
pub fn perf_pages(buffer: u64) -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
        .unwrap_or(4096)
        .max(1);
    let per_cpu = usize::try_from(buffer).unwrap_or(usize::MAX) / online_cpus();
    (per_cpu / page).max(1).next_power_of_two()
}

impl<'a> Consumer<'a> {
    /// Opens the transport `transport` (`abi::TRANSPORT_*`) of `inst`;
    /// `on_record` gets every record.
    ///
    /// # Errors
    /// The buffer cannot be set up (e.g. no memlock or no such map).
    pub fn new<F>(
        inst: &'a Instance,
        transport: u32,
        opts: ConsumerOptions,
        on_record: F,
    ) -> Result<Self, Error>
    where
        F: FnMut(&Record<'_>) + 'a,
    {
        Self::with_maps(&inst.maps.ring, &inst.maps.perf, transport, opts, on_record)
    }

    /// Opens the capture tap's buffers of `inst` instead of the rule events'.
    ///
    /// # Errors
    /// As [`Consumer::new`].
    pub fn tap<F>(
        inst: &'a Instance,
        transport: u32,
        opts: ConsumerOptions,
        on_record: F,
    ) -> Result<Self, Error>
    where
        F: FnMut(&Record<'_>) + 'a,
    {
        Self::with_maps(
            &inst.maps.tap_ring,
            &inst.maps.tap_perf,
            transport,
            opts,
            on_record,
        )
    }

    fn with_maps<F>(
        ring: &'a MapHandle,
        perf: &'a MapHandle,
        transport: u32,
        opts: ConsumerOptions,
        on_record: F,
    ) -> Result<Self, Error>
    where
        F: FnMut(&Record<'_>) + 'a,
    {
        let counts = Rc::new(Counts::default());
        // Only one of the two transports below takes `handle`.
        let mut on_record = on_record;
        let mut handle = {
            let counts = Rc::clone(&counts);
            move |data: &[u8]| match decode(data) {
                Ok(r) => {
                    counts.delivered.set(counts.delivered.get() + 1);
                    on_record(&r);
                }
                Err(_) => counts.malformed.set(counts.malformed.get() + 1),
            }
        };
        let inner = if transport == abi::TRANSPORT_PERFBUF {
            let lost = Rc::clone(&counts);
            let pb = PerfBuffer::new(
                perf,
                perf_pages(opts.buffer),
                opts.perf_per_wakeup,
                move |_cpu, data: &[u8]| handle(data),
                move |_cpu, n| lost.perf_lost.set(lost.perf_lost.get() + n),
            )
            .map_err(err("open the perf buffer"))?;
            Inner::Perf(pb)
        } else {
            Inner::Ring(RingBuf::new(ring, handle).map_err(err("open the ring buffer"))?)
        };
        Ok(Self {
            inner,
            counts,
            opts,
            backoff: Cell::new(BUSY_BACKOFF.0),
        })
    }

    /// Waits for records (epoll: up to the timeout; busy: not at all) and
    /// hands over every one available.
    ///
    /// # Errors
    /// The poll fails (other than by a signal).
    pub fn poll(&self) -> Result<(), Error> {
        let before = self.counts.delivered.get();
        let r = match (&self.inner, self.opts.poll) {
            // After the wait, read everything: records written without a
            // wake-up (batched, adaptive) are delivered within one timeout.
            (Inner::Ring(rb), Poll::Epoll) => {
                rb.poll(self.opts.timeout).and_then(|()| rb.consume())
            }
            (Inner::Perf(pb), Poll::Epoll) => pb.poll(self.opts.timeout),
            (Inner::Ring(rb), Poll::Busy) => rb.consume(),
            (Inner::Perf(pb), Poll::Busy) => pb.consume(),
        };
        // A busy poll that found nothing, or stopped at a ring record still
        // being written, pauses a little before the caller looks again:
        // each look reads a cache line the producer is writing, and looking
        // back to back took it from the producer so often that the producer
        // slowed (BENCHMARKS.md, transport). A few PAUSEs are short next to
        // a record's interval.
        let stalled = matches!(&self.inner, Inner::Ring(rb) if rb.stalled());
        if self.opts.poll == Poll::Busy {
            if stalled || self.counts.delivered.get() == before {
                let n = self.backoff.get();
                for _ in 0..n {
                    std::hint::spin_loop();
                }
                self.backoff.set((n * 2).min(BUSY_BACKOFF.1));
            } else {
                self.backoff.set(BUSY_BACKOFF.0);
            }
        }
        match r {
            Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => Ok(()),
            other => other.map_err(err("poll")),
        }
    }

    /// Hands over every record already in the buffer, without waiting.
    ///
    /// # Errors
    /// Reading the buffer fails.
    pub fn drain(&self) -> Result<(), Error> {
        match &self.inner {
            Inner::Ring(rb) => rb.consume(),
            Inner::Perf(pb) => pb.consume(),
        }
        .map_err(err("drain"))
    }

    /// Counts so far.
    #[must_use]
    pub fn delivery(&self) -> Delivery {
        Delivery {
            delivered: self.counts.delivered.get(),
            perf_lost: self.counts.perf_lost.get(),
            malformed: self.counts.malformed.get(),
        }
    }
}
