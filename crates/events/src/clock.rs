//! Turning the kernel's CLOCK_MONOTONIC event timestamps into wall-clock time.

#[inline]
fn now(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The offset from `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) to Unix time,
/// measured once; add it to an event's `ts_ns`.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    offset: i128,
}

impl WallClock {
    /// Measures the offset now (the tightest of a few tries).
    #[must_use]
    pub fn new() -> Self {
        let mut best: Option<(u64, i128)> = None;
        for _ in 0..5 {
            let m1 = now(libc::CLOCK_MONOTONIC);
            let r = now(libc::CLOCK_REALTIME);
            let m2 = now(libc::CLOCK_MONOTONIC);
            let width = m2 - m1;
            let off = i128::from(r) - i128::from(m1 + width / 2);
            if best.is_none_or(|(w, _)| width < w) {
                best = Some((width, off));
            }
        }
        Self {
            offset: best.map_or(0, |b| b.1),
        }
    }

    /// Unix time in ns of a monotonic timestamp.
    #[must_use]
    pub fn unix_ns(&self, mono_ns: u64) -> u64 {
        u64::try_from(i128::from(mono_ns) + self.offset).unwrap_or(0)
    }

    /// The current CLOCK_MONOTONIC time (the clock of `ts_ns`).
    #[must_use]
    #[inline]
    pub fn monotonic_now() -> u64 {
        now(libc::CLOCK_MONOTONIC)
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_now_maps_to_about_now() {
        let w = WallClock::new();
        let unix = w.unix_ns(WallClock::monotonic_now());
        let sys = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as u64;
        assert!(unix.abs_diff(sys) < 50_000_000, "{unix} vs {sys}");
    }
}
