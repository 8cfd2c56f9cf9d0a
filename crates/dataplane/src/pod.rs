//! Byte views of the ABI structs generated from the program's BTF.

use crate::skel::types;

/// Marker for generated `#[repr(C)]` ABI structs without padding or pointers.
///
/// # Safety
/// Implementors must be `repr(C)`, contain only integers/arrays of integers,
/// and have no padding bytes, so every byte is initialised and any byte
/// pattern is a valid value.
pub unsafe trait Pod: Copy + Default {}

// SAFETY: generated from abi.h, integer fields only, explicitly padded;
// tests/abi.rs checks their sizes against the C compiler's.
unsafe impl Pod for types::xw_class {}
// SAFETY: as above.
unsafe impl Pod for types::xw_rule {}
// SAFETY: as above.
unsafe impl Pod for types::xw_counter {}
// SAFETY: as above.
unsafe impl Pod for types::xw_info {}
// SAFETY: as above.
unsafe impl Pod for types::xw_trace {}
// SAFETY: as above.
unsafe impl Pod for types::xw_lpm4 {}
// SAFETY: as above.
unsafe impl Pod for types::xw_lpm6 {}
// SAFETY: 256 u32s, no padding.
unsafe impl Pod for types::xw_node4 {}
// SAFETY: four u32s, no padding.
unsafe impl Pod for types::xw_lone4 {}
// SAFETY: as above.
unsafe impl Pod for types::xw_tap {}
// SAFETY: as above.
unsafe impl Pod for types::xw_actstat {}
// SAFETY: as above.
unsafe impl Pod for types::xw_rl_key {}
// SAFETY: plain integer.
unsafe impl Pod for u32 {}

/// The bytes of a value.
pub fn bytes_of<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: T: Pod has no padding, so all size_of::<T>() bytes are initialised.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// The bytes of a slice of values.
pub fn bytes_of_slice<T: Pod>(v: &[T]) -> &[u8] {
    // SAFETY: as `bytes_of`, for a contiguous slice.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// A value read from bytes (`None` if the length is wrong).
pub fn from_bytes<T: Pod>(b: &[u8]) -> Option<T> {
    if b.len() != std::mem::size_of::<T>() {
        return None;
    }
    let mut v = T::default();
    // SAFETY: lengths are equal and any byte pattern is a valid T (Pod).
    unsafe {
        std::ptr::copy_nonoverlapping(b.as_ptr(), (&mut v as *mut T).cast::<u8>(), b.len());
    }
    Some(v)
}
