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

type SampleFn<'a> = Box<dyn FnMut(i32, &[u8]) + 'a>;
type LostFn<'a> = Box<dyn FnMut(i32, u64) + 'a>;

struct Callbacks<'a> {
    sample: SampleFn<'a>,
    lost: LostFn<'a>,
}

/// Per-CPU perf buffers of one `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
pub struct PerfBuffer<'a> {
    ptr: NonNull<libbpf_sys::perf_buffer>,
    // Boxed so the pointer libbpf holds stays valid; freed after `ptr`.
    _callbacks: Box<Callbacks<'a>>,
}

unsafe extern "C" fn on_sample(ctx: *mut c_void, cpu: i32, data: *mut c_void, size: u32) {
    // SAFETY: ctx is the Callbacks box we passed, alive as long as the buffer;
    // libbpf hands us `size` readable bytes at `data` for this call.
    unsafe {
        let cb = &mut *ctx.cast::<Callbacks<'_>>();
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), size as usize);
        (cb.sample)(cpu, bytes);
    }
}

unsafe extern "C" fn on_lost(ctx: *mut c_void, cpu: i32, count: u64) {
    // SAFETY: as in on_sample.
    unsafe {
        let cb = &mut *ctx.cast::<Callbacks<'_>>();
        (cb.lost)(cpu, count);
    }
}

fn last_error(ret: i64) -> libbpf_rs::Error {
    let errno = i32::try_from(-ret).unwrap_or(libc::EINVAL);
    libbpf_rs::Error::from(std::io::Error::from_raw_os_error(errno))
}

impl<'a> PerfBuffer<'a> {
    /// Opens the buffers: `pages` per CPU (a power of two), one wake-up per
    /// `per_wakeup` records.
    ///
    /// # Errors
    /// libbpf cannot open the perf events or map their buffers.
    pub fn new(
        map: &MapHandle,
        pages: usize,
        per_wakeup: u32,
        sample: impl FnMut(i32, &[u8]) + 'a,
        lost: impl FnMut(i32, u64) + 'a,
    ) -> libbpf_rs::Result<Self> {
        let mut callbacks = Box::new(Callbacks {
            sample: Box::new(sample),
            lost: Box::new(lost),
        });
        let opts = libbpf_sys::perf_buffer_opts {
            sz: std::mem::size_of::<libbpf_sys::perf_buffer_opts>() as _,
            sample_period: per_wakeup.max(1),
            ..Default::default()
        };
        let ctx: *mut Callbacks<'a> = &mut *callbacks;
        // SAFETY: the map fd is valid for the call; the callbacks and ctx
        // outlive the buffer (freed in Drop before `callbacks`).
        let pb = unsafe {
            libbpf_sys::perf_buffer__new(
                map.as_fd().as_raw_fd(),
                pages as _,
                Some(on_sample),
                Some(on_lost),
                ctx.cast::<c_void>(),
                &opts,
            )
        };
        // SAFETY: libbpf returns NULL (errno set) or an encoded error pointer.
        let err = unsafe { libbpf_sys::libbpf_get_error(pb.cast::<c_void>()) };
        match NonNull::new(pb) {
            Some(ptr) if err == 0 => Ok(Self {
                ptr,
                _callbacks: callbacks,
            }),
            _ => Err(last_error(if err == 0 {
                -i64::from(libc::ENOMEM)
            } else {
                err
            })),
        }
    }

    /// Waits up to `timeout` for a wake-up and reads the buffers that have
    /// data, then reads all of them: records written without a wake-up
    /// (batched) are delivered within one timeout.
    ///
    /// # Errors
    /// epoll or reading fails.
    pub fn poll(&self, timeout: Duration) -> libbpf_rs::Result<()> {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: ptr is a live perf_buffer.
        let ret = unsafe { libbpf_sys::perf_buffer__poll(self.ptr.as_ptr(), ms) };
        if ret < 0 && ret != -libc::EINTR {
            return Err(last_error(i64::from(ret)));
        }
        self.consume()
    }

    /// Reads every buffer without waiting.
    ///
    /// # Errors
    /// Reading fails.
    pub fn consume(&self) -> libbpf_rs::Result<()> {
        // SAFETY: ptr is a live perf_buffer.
        let ret = unsafe { libbpf_sys::perf_buffer__consume(self.ptr.as_ptr()) };
        if ret < 0 {
            return Err(last_error(i64::from(ret)));
        }
        Ok(())
    }
}

impl Drop for PerfBuffer<'_> {
    fn drop(&mut self) {
        // SAFETY: ptr is live and freed once; the callbacks outlive this call.
        unsafe { libbpf_sys::perf_buffer__free(self.ptr.as_ptr()) };
    }
}
