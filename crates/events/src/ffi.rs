//! What the two buffer wrappers share: a callback context handed to libbpf
//! as a raw pointer, and libbpf's error conventions.
//!
//! The context's type is erased in storage but not in the trampolines: each
//! wrapper instantiates its `extern "C"` trampoline for the caller's closure
//! type, so a record reaches the closure with one call from libbpf and no
//! dynamic dispatch (a `Box<dyn FnMut>` cost a few ns a record).

use std::cell::Cell;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// A heap value whose type only its drop function knows.
pub(crate) struct Erased<'a> {
    ptr: *mut c_void,
    drop: unsafe fn(*mut c_void),
    // The value may borrow for 'a.
    _life: PhantomData<&'a mut ()>,
}

unsafe fn drop_box<T>(p: *mut c_void) {
    // SAFETY: p came from Box::<T>::into_raw in Erased::new and is freed once.
    drop(unsafe { Box::from_raw(p.cast::<T>()) });
}

impl<'a> Erased<'a> {
    /// Boxes `v`; [`Erased::ptr`] points to it until this is dropped.
    pub(crate) fn new<T: 'a>(v: T) -> Self {
        Self {
            ptr: Box::into_raw(Box::new(v)).cast(),
            drop: drop_box::<T>,
            _life: PhantomData,
        }
    }

    /// The pointer to give libbpf as its callbacks' context.
    pub(crate) fn ptr(&self) -> *mut c_void {
        self.ptr
    }
}

impl Drop for Erased<'_> {
    fn drop(&mut self) {
        // SAFETY: ptr and drop were made together in new(); dropped once.
        unsafe { (self.drop)(self.ptr) }
    }
}

/// Refuses re-entry: a callback that reached its own buffer (through an
/// `Rc`, say) and polled it again would have libbpf call the closure while
/// the outer call still holds `&mut` to it.
#[derive(Default)]
pub(crate) struct Reading(Cell<bool>);

/// Held while libbpf may call back into the closure.
pub(crate) struct ReadGuard<'r>(&'r Cell<bool>);

impl Reading {
    /// Marks a read as running; EBUSY if one already is (re-entry).
    pub(crate) fn enter(&self) -> libbpf_rs::Result<ReadGuard<'_>> {
        if self.0.replace(true) {
            return Err(errno_error(-i64::from(libc::EBUSY)));
        }
        Ok(ReadGuard(&self.0))
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// libbpf's negative errno as an error.
pub(crate) fn errno_error(ret: i64) -> libbpf_rs::Error {
    let errno = i32::try_from(-ret).unwrap_or(libc::EINVAL);
    libbpf_rs::Error::from(std::io::Error::from_raw_os_error(errno))
}

/// A libbpf call's int result: negative errno → error.
pub(crate) fn check(ret: i32) -> libbpf_rs::Result<()> {
    if ret < 0 {
        return Err(errno_error(i64::from(ret)));
    }
    Ok(())
}

/// The object a libbpf constructor returned, or its error (NULL with errno,
/// or an encoded error pointer).
pub(crate) fn constructed<T>(p: *mut T) -> libbpf_rs::Result<NonNull<T>> {
    // SAFETY: libbpf_get_error only inspects the pointer value.
    let err = unsafe { libbpf_rs::libbpf_sys::libbpf_get_error(p.cast()) };
    let Some(ptr) = NonNull::new(p) else {
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .filter(|&e| e != 0)
            .unwrap_or(libc::ENOMEM);
        return Err(errno_error(-i64::from(errno)));
    };
    if err != 0 {
        return Err(errno_error(err));
    }
    Ok(ptr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn the_erased_value_is_dropped_once_with_its_own_type() {
        struct Noisy(Rc<Cell<u32>>);
        impl Drop for Noisy {
            fn drop(&mut self) {
                self.0.set(self.0.get() + 1);
            }
        }
        let drops = Rc::new(Cell::new(0));
        let e = Erased::new(Noisy(Rc::clone(&drops)));
        assert!(!e.ptr().is_null());
        assert_eq!(drops.get(), 0);
        drop(e);
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn a_read_inside_a_read_is_refused_and_a_later_one_allowed() {
        let r = Reading::default();
        let g = r.enter().expect("first");
        assert!(r.enter().is_err());
        drop(g);
        assert!(r.enter().is_ok());
    }

    #[test]
    fn libbpf_errors_keep_their_errno() {
        let e = errno_error(-i64::from(libc::EPERM));
        assert_eq!(e.kind(), libbpf_rs::ErrorKind::PermissionDenied);
        assert!(constructed(std::ptr::null_mut::<c_void>()).is_err());
    }
}
