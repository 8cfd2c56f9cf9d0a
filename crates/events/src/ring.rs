//! A BPF ring buffer reader on libbpf's `ring_buffer`, calling the caller's
//! closure directly for each record (libbpf-rs's `RingBuffer` boxes it as
//! `dyn FnMut`: one more indirect call a record).

use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd};
use std::ptr::NonNull;
use std::time::Duration;

use libbpf_rs::libbpf_sys;
use libbpf_rs::MapHandle;

use crate::ffi::{check, constructed, Erased, Reading};

unsafe extern "C" fn trampoline<F: FnMut(&[u8])>(
    ctx: *mut c_void,
    data: *mut c_void,
    size: libbpf_sys::size_t,
) -> i32 {
    // SAFETY: ctx is the F this trampoline was instantiated for, alive as
    // long as the ring; libbpf hands us `size` readable bytes at `data`.
    unsafe {
        let f = &mut *ctx.cast::<F>();
        f(std::slice::from_raw_parts(data.cast::<u8>(), size as usize));
    }
    0
}

/// One `BPF_MAP_TYPE_RINGBUF` map, mapped and read.
pub struct RingBuf<'a> {
    ptr: NonNull<libbpf_sys::ring_buffer>,
    reading: Reading,
    // The closure libbpf calls; dropped after `ptr` is freed (Drop).
    _callback: Erased<'a>,
}

impl<'a> RingBuf<'a> {
    /// Maps the ring of `map`; `on_record` gets every record.
    ///
    /// # Errors
    /// libbpf cannot map the ring or set up its epoll.
    pub fn new<F: FnMut(&[u8]) + 'a>(map: &MapHandle, on_record: F) -> libbpf_rs::Result<Self> {
        let callback = Erased::new(on_record);
        // SAFETY: the map fd is valid for the call; the closure outlives the
        // ring (freed in Drop before it), and the trampoline is
        // instantiated for its type.
        let rb = unsafe {
            libbpf_sys::ring_buffer__new(
                map.as_fd().as_raw_fd(),
                Some(trampoline::<F>),
                callback.ptr(),
                std::ptr::null(),
            )
        };
        Ok(Self {
            ptr: constructed(rb)?,
            reading: Reading::default(),
            _callback: callback,
        })
    }

    /// Waits up to `timeout` for a wake-up and reads what is there.
    ///
    /// # Errors
    /// epoll or reading fails (EINTR included: the caller decides); EBUSY
    /// when called from inside this ring's own callback.
    pub fn poll(&self, timeout: Duration) -> libbpf_rs::Result<()> {
        let _reading = self.reading.enter()?;
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: ptr is a live ring_buffer.
        check(unsafe { libbpf_sys::ring_buffer__poll(self.ptr.as_ptr(), ms) })
    }

    /// Reads every record there without waiting.
    ///
    /// # Errors
    /// Reading fails; EBUSY when called from inside this ring's own callback.
    pub fn consume(&self) -> libbpf_rs::Result<()> {
        let _reading = self.reading.enter()?;
        // SAFETY: ptr is a live ring_buffer.
        check(unsafe { libbpf_sys::ring_buffer__consume(self.ptr.as_ptr()) })
    }
}

impl Drop for RingBuf<'_> {
    fn drop(&mut self) {
        // SAFETY: ptr is live and freed once; the closure outlives this call.
        unsafe { libbpf_sys::ring_buffer__free(self.ptr.as_ptr()) };
    }
}
