//! A perf buffer with a configurable number of records per wake-up.
//!
//! libbpf-rs opens perf buffers with one wake-up per record; libbpf itself
//! takes `sample_period`, which becomes the events' `wakeup_events`. This
//! thin wrapper passes it through, so `[events] wakeup` applies to both
//! transports and the two can be compared on equal terms.

use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd};
use std::ptr::NonNull;
use std::time::Duration;

use libbpf_rs::libbpf_sys;
use libbpf_rs::MapHandle;

use crate::ffi::{check, constructed, errno_error, Erased, Reading};

struct Callbacks<S, L> {
    sample: S,
    lost: L,
}

unsafe extern "C" fn on_sample<S: FnMut(i32, &[u8]), L>(
    ctx: *mut c_void,
    cpu: i32,
    data: *mut c_void,
    size: u32,
) {
    // SAFETY: ctx is the Callbacks<S, L> this trampoline was instantiated
    // for, alive as long as the buffer; libbpf hands us `size` readable
    // bytes at `data` for this call.
    unsafe {
        let cb = &mut *ctx.cast::<Callbacks<S, L>>();
        (cb.sample)(
            cpu,
            std::slice::from_raw_parts(data.cast::<u8>(), size as usize),
        );
    }
}

unsafe extern "C" fn on_lost<S, L: FnMut(i32, u64)>(ctx: *mut c_void, cpu: i32, count: u64) {
    // SAFETY: as in on_sample.
    unsafe {
        let cb = &mut *ctx.cast::<Callbacks<S, L>>();
        (cb.lost)(cpu, count);
    }
}

/// Per-CPU perf buffers of one `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
pub struct PerfBuffer<'a> {
    ptr: NonNull<libbpf_sys::perf_buffer>,
    reading: Reading,
    // The callbacks libbpf calls with; dropped after `ptr` is freed (Drop).
    _callbacks: Erased<'a>,
}

impl<'a> PerfBuffer<'a> {
    /// Opens the buffers: `pages` per CPU (a power of two), one wake-up per
    /// `per_wakeup` records.
    ///
    /// # Errors
    /// libbpf cannot open the perf events or map their buffers.
    pub fn new<S, L>(
        map: &MapHandle,
        pages: usize,
        per_wakeup: u32,
        sample: S,
        lost: L,
    ) -> libbpf_rs::Result<Self>
    where
        S: FnMut(i32, &[u8]) + 'a,
        L: FnMut(i32, u64) + 'a,
    {
        let callbacks = Erased::new(Callbacks { sample, lost });
        let opts = libbpf_sys::perf_buffer_opts {
            sz: std::mem::size_of::<libbpf_sys::perf_buffer_opts>() as _,
            sample_period: per_wakeup.max(1),
            ..Default::default()
        };
        // SAFETY: the map fd is valid for the call; the callbacks outlive
        // the buffer (freed in Drop before them), and the trampolines are
        // instantiated for their type.
        let pb = unsafe {
            libbpf_sys::perf_buffer__new(
                map.as_fd().as_raw_fd(),
                pages as _,
                Some(on_sample::<S, L>),
                Some(on_lost::<S, L>),
                callbacks.ptr(),
                &opts,
            )
        };
        Ok(Self {
            ptr: constructed(pb)?,
            reading: Reading::default(),
            _callbacks: callbacks,
        })
    }

    /// Waits up to `timeout` for a wake-up and reads the buffers that have
    /// data, then reads all of them: records written without a wake-up
    /// (batched) are delivered within one timeout.
    ///
    /// # Errors
    /// epoll or reading fails; EBUSY when called from inside this buffer's
    /// own callback.
    pub fn poll(&self, timeout: Duration) -> libbpf_rs::Result<()> {
        let _reading = self.reading.enter()?;
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: ptr is a live perf_buffer.
        let ret = unsafe { libbpf_sys::perf_buffer__poll(self.ptr.as_ptr(), ms) };
        if ret < 0 && ret != -libc::EINTR {
            return Err(errno_error(i64::from(ret)));
        }
        self.consume_all()
    }

    /// Reads every buffer without waiting.
    ///
    /// # Errors
    /// Reading fails; EBUSY when called from inside this buffer's own
    /// callback.
    pub fn consume(&self) -> libbpf_rs::Result<()> {
        let _reading = self.reading.enter()?;
        self.consume_all()
    }

    fn consume_all(&self) -> libbpf_rs::Result<()> {
        // SAFETY: ptr is a live perf_buffer.
        check(unsafe { libbpf_sys::perf_buffer__consume(self.ptr.as_ptr()) })
    }
}

impl Drop for PerfBuffer<'_> {
    fn drop(&mut self) {
        // SAFETY: ptr is live and freed once; the callbacks outlive this call.
        unsafe { libbpf_sys::perf_buffer__free(self.ptr.as_ptr()) };
    }
}
