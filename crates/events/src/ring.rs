//! A BPF ring buffer reader: the ring mapped as the kernel lays it out
//! (a writable consumer page; the producer page and the data pages, mapped
//! twice in a row so a record that wraps reads as one slice), and an epoll
//! instance for wake-ups.
//!
//! Not libbpf's `ring_buffer`: that one stores the consumer position after
//! every record, and the producer reads that cache line on every
//! reservation, so each record moved the line between the two CPUs. With a
//! busy-polling consumer that halved the producer's rate on the Intel VM
//! (BENCHMARKS.md, transport). This reader stores it once per
//! [`RELEASE_EVERY`] records and at the end of each batch, as libbpf's perf
//! buffer does with its tail. It calls the caller's closure through a
//! function instantiated for its type (libbpf-rs's `RingBuffer` boxes it
//! as `dyn FnMut`).

use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use libbpf_rs::{MapCore, MapHandle};

use crate::ffi::{errno_error, Erased, Reading};

/// The record header's flags (kernel: BPF_RINGBUF_BUSY_BIT, _DISCARD_BIT).
const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;
/// Bytes of a record's header (BPF_RINGBUF_HDR_SZ).
const HDR: u64 = 8;
/// Records read between two stores of the consumer position: few enough
/// that a long batch frees room as it goes, many enough that the store's
/// cache line rarely moves. A quarter of the ring read also stores it, so
/// a small ring of large records is freed as often.
pub const RELEASE_EVERY: u32 = 64;
/// Records ahead whose headers are prefetched, and the smallest record
/// stride worth it (see `prefetch_ahead`).
const PREFETCH: u64 = 4;
const PREFETCH_MIN_STEP: u64 = 256;

/// One `mmap`ed region, unmapped on drop.
struct Mapping {
    ptr: NonNull<c_void>,
    len: usize,
}

impl Mapping {
    fn new(fd: i32, len: usize, prot: i32, offset: usize) -> libbpf_rs::Result<Self> {
        let offset =
            libc::off_t::try_from(offset).map_err(|_| errno_error(-i64::from(libc::EINVAL)))?;
        // SAFETY: a fresh shared mapping of the map's fd; the kernel checks
        // the length, protection and offset against the ring.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd,
                offset,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(last_error());
        }
        NonNull::new(p)
            .map(|ptr| Self { ptr, len })
            .ok_or_else(|| errno_error(-i64::from(libc::ENOMEM)))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are one live mapping, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr(), self.len) };
    }
}

fn last_error() -> libbpf_rs::Error {
    let errno = std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO);
    errno_error(-i64::from(errno))
}

/// Calls the closure behind `ctx` (an `F`) with one record.
unsafe fn call<F: FnMut(&[u8])>(ctx: *mut c_void, record: &[u8]) {
    // SAFETY: ctx is the F this function was instantiated for, alive as
    // long as the ring, and not borrowed elsewhere (Reading refuses
    // re-entry).
    unsafe { (*ctx.cast::<F>())(record) }
}

/// One `BPF_MAP_TYPE_RINGBUF` map, mapped and read.
pub struct RingBuf<'a> {
    consumer: Mapping,
    // Producer page, then the data pages twice.
    producer: Mapping,
    page: usize,
    mask: u64,
    epoll: OwnedFd,
    reading: Reading,
    // The last read stopped at a record still being written.
    stalled: std::cell::Cell<bool>,
    call: unsafe fn(*mut c_void, &[u8]),
    callback: Erased<'a>,
}

impl<'a> RingBuf<'a> {
    /// Maps the ring of `map`; `on_record` gets every record.
    ///
    /// # Errors
    /// The map is no ring buffer, or mapping it or setting up epoll fails.
    pub fn new<F: FnMut(&[u8]) + 'a>(map: &MapHandle, on_record: F) -> libbpf_rs::Result<Self> {
        let fd = map.as_fd().as_raw_fd();
        let size = usize::try_from(map.max_entries()).unwrap_or(0);
        if map.map_type() != libbpf_rs::MapType::RingBuf || !size.is_power_of_two() {
            return Err(errno_error(-i64::from(libc::EINVAL)));
        }
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let consumer = Mapping::new(fd, page, libc::PROT_READ | libc::PROT_WRITE, 0)?;
        let producer = Mapping::new(fd, page + 2 * size, libc::PROT_READ, page)?;
        // SAFETY: epoll_create1 has no preconditions; the fd is checked.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(last_error());
        }
        // SAFETY: ep is a fresh fd that nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(ep) };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        // SAFETY: both fds are valid; ev is read during the call only.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(last_error());
        }
        Ok(Self {
            consumer,
            producer,
            page,
            mask: size as u64 - 1,
            epoll,
            reading: Reading::default(),
            stalled: std::cell::Cell::new(false),
            call: call::<F>,
            callback: Erased::new(on_record),
        })
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the consumer page starts with the kernel's u64
        // consumer_pos, page-aligned, alive as long as self.
        unsafe { &*self.consumer.ptr.as_ptr().cast::<AtomicU64>() }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: likewise for the producer page's producer_pos.
        unsafe { &*self.producer.ptr.as_ptr().cast::<AtomicU64>() }
    }

    /// The data pages (mapped twice: a record that wraps is contiguous).
    fn data(&self) -> *const u8 {
        // SAFETY: the producer mapping is page + 2 × size bytes long.
        unsafe { self.producer.ptr.as_ptr().cast::<u8>().add(self.page) }
    }

    /// Waits up to `timeout` for a wake-up and reads what is there.
    ///
    /// # Errors
    /// epoll fails (EINTR included: the caller decides); EBUSY when called
    /// from inside this ring's own callback.
    pub fn poll(&self, timeout: Duration) -> libbpf_rs::Result<()> {
        let _reading = self.reading.enter()?;
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: the epoll fd is ours; one event's room.
        if unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut ev, 1, ms) } < 0 {
            return Err(last_error());
        }
        self.read_all();
        Ok(())
    }

    /// Reads every record there without waiting.
    ///
    /// # Errors
    /// EBUSY when called from inside this ring's own callback.
    pub fn consume(&self) -> libbpf_rs::Result<()> {
        let _reading = self.reading.enter()?;
        self.read_all();
        Ok(())
    }

    /// Whether the last read stopped at a record the producer had reserved
    /// but not yet committed (the producer position moves at reservation:
    /// reading that record's header again at once takes its cache line
    /// from the producer while it writes the record).
    #[must_use]
    pub fn stalled(&self) -> bool {
        self.stalled.get()
    }

    /// Starts loading the headers of records ahead before the caller's
    /// closure runs, guessing that they are `step` bytes apart like the
    /// current one (a capture with one snaplen reserves one size class).
    /// Each header's address comes from the one before it, so without this
    /// the reader waits a full cache miss per record, the line coming from
    /// the producer CPU's cache: for 1.5 KB records that wait was most of
    /// the per-record cost. `first`: the batch's first record, which starts
    /// all [`PREFETCH`] of them; after it each record starts the one
    /// [`PREFETCH`] ahead. Small records need none (the CPU's own
    /// prefetcher follows consecutive lines, and the extra instructions
    /// cost more than they save). A wrong guess wastes a prefetch, never
    /// reads anything wrong; prefetches never fault.
    #[inline]
    fn prefetch_ahead(&self, cons: u64, step: u64, prod: u64, first: bool) {
        #[cfg(target_arch = "x86_64")]
        {
            if step < PREFETCH_MIN_STEP {
                return;
            }
            let data = self.data();
            let from = if first { 1 } else { PREFETCH };
            for k in from..=PREFETCH {
                let at = cons + k * step;
                if at >= prod {
                    break;
                }
                let off = usize::try_from(at & self.mask).unwrap_or(0);
                // SAFETY: off < size, inside the data mapping; a prefetch
                // only hints the cache and reads nothing.
                unsafe {
                    std::arch::x86_64::_mm_prefetch(
                        data.add(off).cast::<i8>(),
                        std::arch::x86_64::_MM_HINT_T0,
                    );
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (cons, step, prod, first);
    }

    /// Reads records until the producer position is reached or a record
    /// is still being written; returns how many were handed over.
    fn read_all(&self) -> u64 {
        let data = self.data();
        // Only this reader writes it.
        let mut cons = self.consumer_pos().load(Ordering::Relaxed);
        let mut handed = 0;
        self.stalled.set(false);
        loop {
            // Acquire: the records up to it are written (the kernel
            // publishes the position after the header).
            let prod = self.producer_pos().load(Ordering::Acquire);
            if cons >= prod {
                return handed;
            }
            let (mut unreleased, mut released, start) = (0, cons, cons);
            while cons < prod {
                let off = usize::try_from(cons & self.mask).unwrap_or(0);
                // SAFETY: off < size, and the header is 8-byte aligned
                // inside the first copy of the data pages.
                let hdr = unsafe { &*data.add(off).cast::<AtomicU32>() };
                // Acquire: pairs with the kernel's commit of this record.
                let len = hdr.load(Ordering::Acquire);
                if len & BUSY != 0 {
                    // Reserved, not committed yet: stop here, keep order.
                    self.consumer_pos().store(cons, Ordering::Release);
                    self.stalled.set(true);
                    return handed;
                }
                let n = u64::from(len & !(BUSY | DISCARD));
                let step = (n + HDR + 7) & !7;
                self.prefetch_ahead(cons, step, prod, cons == start);
                if len & DISCARD == 0 {
                    // SAFETY: the kernel wrote n bytes after the header;
                    // n <= size, and the second copy of the data pages
                    // holds what wraps.
                    let rec = unsafe {
                        std::slice::from_raw_parts(data.add(off + HDR as usize), n as usize)
                    };
                    // SAFETY: call was instantiated for the callback's type.
                    unsafe { (self.call)(self.callback.ptr(), rec) };
                    handed += 1;
                }
                cons += step;
                unreleased += 1;
                if unreleased == RELEASE_EVERY || cons - released > self.mask / 4 {
                    // Release: the record's bytes are read before the
                    // kernel may reuse them.
                    self.consumer_pos().store(cons, Ordering::Release);
                    (unreleased, released) = (0, cons);
                }
            }
            self.consumer_pos().store(cons, Ordering::Release);
            // The store before the next look at the producer position:
            // the kernel commits a record, then reads the consumer
            // position to decide on a wake-up (with a full barrier). Were
            // our load to pass our store, each side could miss the other's
            // update, and a record committed then would wait for a poll
            // timeout instead of waking us.
            fence(Ordering::SeqCst);
        }
    }
}
