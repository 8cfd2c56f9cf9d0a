//! Decoding one event record: the fixed `struct xw_event` header and the
//! packet bytes after it.

use xdpwall_dataplane::types::xw_event;

/// One decoded event.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The fixed header.
    pub header: xw_event,
    /// The captured packet bytes (`header.cap_len` of them).
    pub data: &'a [u8],
}

/// A record that does not hold what its header says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the fixed header.
    #[error("event record of {0} bytes is shorter than its {HEADER} byte header")]
    Short(usize),
    /// The header claims more packet bytes than follow.
    #[error("event record claims {claimed} packet bytes but carries {present}")]
    Truncated {
        /// `cap_len`.
        claimed: u32,
        /// Bytes after the header.
        present: usize,
    },
}

/// Size of the fixed header.
pub const HEADER: usize = std::mem::size_of::<xw_event>();

pub use xdpwall_rules::compile::abi::{ring_record_bytes, RING_CLASSES};

/// Decodes a record as the kernel wrote it (ring: the header and a size
/// class, see [`ring_record_bytes`]; perf: padded to 8 bytes), so trailing
/// bytes beyond `cap_len` are ignored.
///
/// # Errors
/// The record is shorter than its header or than the bytes it claims.
pub fn decode(bytes: &[u8]) -> Result<Record<'_>, DecodeError> {
    let Some((head, rest)) = bytes.split_at_checked(HEADER) else {
        return Err(DecodeError::Short(bytes.len()));
    };
    let mut header = xw_event::default();
    // SAFETY: xw_event is a generated repr(C) struct of integers without
    // padding (tests/abi.rs); `head` has exactly its size; any bytes are valid.
    unsafe {
        std::ptr::copy_nonoverlapping(
            head.as_ptr(),
            (&mut header as *mut xw_event).cast::<u8>(),
            HEADER,
        );
    }
    let cap = header.cap_len as usize;
    let Some(data) = rest.get(..cap) else {
        return Err(DecodeError::Truncated {
            claimed: header.cap_len,
            present: rest.len(),
        });
    };
    Ok(Record { header, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(ev: &xw_event, data: &[u8]) -> Vec<u8> {
        // SAFETY: plain integers, no padding (see decode).
        let head =
            unsafe { std::slice::from_raw_parts((ev as *const xw_event).cast::<u8>(), HEADER) };
        [head, data].concat()
    }

    #[test]
    fn decodes_header_and_bytes_and_ignores_padding() {
        let ev = xw_event {
            ts_ns: 7,
            ifindex: 3,
            cpu: 1,
            rule: 9,
            verdict: 1,
            wire_len: 74,
            cap_len: 4,
            kind: 1,
            ..Default::default()
        };
        let mut bytes = raw(&ev, &[1, 2, 3, 4]);
        bytes.extend_from_slice(&[0, 0, 0, 0]); // perf padding
        let r = decode(&bytes).expect("decodes");
        assert_eq!(
            (r.header.ts_ns, r.header.rule, r.header.wire_len),
            (7, 9, 74)
        );
        assert_eq!(r.data, &[1, 2, 3, 4]);
    }

    #[test]
    fn short_and_truncated_records_are_errors() {
        assert_eq!(decode(&[0u8; 10]).err(), Some(DecodeError::Short(10)));
        let ev = xw_event {
            cap_len: 100,
            ..Default::default()
        };
        let bytes = raw(&ev, &[0u8; 10]);
        assert_eq!(
            decode(&bytes).err(),
            Some(DecodeError::Truncated {
                claimed: 100,
                present: 10
            })
        );
    }
}
