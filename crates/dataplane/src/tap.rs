//! The capture tap of a running instance (`xw_tap_ctl`), held as a lease.
//!
//! `xdpwall capture` and `xdpwall top` switch the tap on to receive packets
//! through buffers of their own. The data plane stops tapping by itself when
//! the lease's deadline passes, so a tapper killed without cleaning up
//! (`kill -9`) costs the data plane at most [`LEASE`]; a live tapper renews
//! it every [`RENEW_EVERY`]. Deadlines are `CLOCK_MONOTONIC`, the clock of
//! `bpf_ktime_get_ns()` (a process in a time namespace would see an offset
//! monotonic clock: not supported).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::skel::types::xw_tap;

/// How long a lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(5);
/// How often a holder renews its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

/// `CLOCK_MONOTONIC` now, in ns (what `bpf_ktime_get_ns()` returns).
#[must_use]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// What a tap should deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapSpec {
    /// Packet bytes per record.
    pub snaplen: u32,
    /// `abi::TRANSPORT_*`.
    pub transport: u32,
    /// `abi::TAP_*` flags (e.g. only dropped packets).
    pub flags: u32,
}

/// The state of an instance's tap as seen now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapState {
    /// Off, or its lease ran out.
    Free,
    /// On, with this much lease left.
    Held(Duration),
}

/// Reads whether someone holds `inst`'s tap.
///
/// # Errors
/// The map cannot be read.
pub fn state(inst: &Instance) -> Result<TapState> {
    Ok(state_of(&inst.tap()?, monotonic_ns()))
}

fn state_of(t: &xw_tap, now: u64) -> TapState {
    if t.enabled == 0 || t.expires_ns <= now {
        TapState::Free
    } else {
        TapState::Held(Duration::from_nanos(t.expires_ns - now))
    }
}

/// A held tap; turned off when dropped.
#[derive(Debug)]
pub struct TapLease<'a> {
    inst: &'a Instance,
    iface: String,
    tap: xw_tap,
}

impl<'a> TapLease<'a> {
    /// Switches `inst`'s tap on for `spec`. A tap held by another live
    /// lease is refused unless `force`.
    ///
    /// # Errors
    /// [`Error::TapBusy`], or the map cannot be read or written.
    pub fn acquire(inst: &'a Instance, iface: &str, spec: TapSpec, force: bool) -> Result<Self> {
        if let TapState::Held(left) = state(inst)? {
            if !force {
                return Err(Error::TapBusy {
                    iface: iface.to_string(),
                    secs: left.as_secs_f64(),
                });
            }
        }
        let mut lease = Self {
            inst,
            iface: iface.to_string(),
            tap: xw_tap {
                enabled: 1,
                snaplen: spec.snaplen,
                transport: spec.transport,
                flags: spec.flags,
                expires_ns: 0,
            },
        };
        lease.write()?;
        Ok(lease)
    }

    fn write(&mut self) -> Result<()> {
        let lease = u64::try_from(LEASE.as_nanos()).unwrap_or(u64::MAX);
        self.tap.expires_ns = monotonic_ns().saturating_add(lease);
        self.inst.set_tap(&self.tap)
    }

    /// Extends the lease by [`LEASE`] from now.
    ///
    /// # Errors
    /// [`Error::TapLost`] when another process rewrote the tap since our
    /// last write (it took over after our lease ran out), or a map error.
    pub fn renew(&mut self) -> Result<()> {
        let now = self.inst.tap()?;
        if now.expires_ns != self.tap.expires_ns || now.enabled == 0 {
            return Err(Error::TapLost(self.iface.clone()));
        }
        self.write()
    }

    /// Turns the tap off now (if it is still ours).
    pub fn release(&mut self) {
        if self.tap.enabled == 0 {
            return;
        }
        self.tap.enabled = 0;
        if matches!(self.inst.tap(), Ok(t) if t.expires_ns == self.tap.expires_ns) {
            let _ = self.inst.set_tap(&xw_tap::default());
        }
    }
}

impl Drop for TapLease<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tap_is_held_only_while_on_and_unexpired() {
        let on = |expires_ns| xw_tap {
            enabled: 1,
            expires_ns,
            ..Default::default()
        };
        assert_eq!(state_of(&xw_tap::default(), 100), TapState::Free);
        assert_eq!(state_of(&on(100), 100), TapState::Free);
        assert_eq!(state_of(&on(50), 100), TapState::Free);
        assert_eq!(
            state_of(&on(1_000_000_100), 100),
            TapState::Held(Duration::from_secs(1))
        );
        let off = xw_tap {
            enabled: 0,
            expires_ns: u64::MAX,
            ..Default::default()
        };
        assert_eq!(state_of(&off, 100), TapState::Free);
    }

    #[test]
    fn the_monotonic_clock_moves_forward() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(a > 0 && b >= a);
    }
}
