//! Parsing the generator's quantities as users write them.

use std::time::Duration;

use crate::error::{Error, Result};

/// `10s`, `500ms`, `2m`, `1h` or a plain number of seconds (`1.5`).
///
/// # Errors
/// Anything else, or zero.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let t = s.trim();
    let (num, unit) = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((t, ""), |i| t.split_at(i));
    let mult = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => f64::NAN,
    };
    num.parse::<f64>()
        .ok()
        .map(|n| n * mult)
        .filter(|v| v.is_finite() && *v > 0.0 && *v < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| Error::Invalid(format!("`{s}` is not a duration (e.g. 10s, 500ms, 2m)")))
}

/// Frames per second: `max` (`None`), or a number with an optional `k`,
/// `M` or `G` suffix (`500k`, `1.5M`).
///
/// # Errors
/// Anything else, or zero.
pub fn parse_rate(s: &str) -> Result<Option<u64>> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("max") {
        return Ok(None);
    }
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('M' | 'm') => (&t[..t.len() - 1], 1e6),
        Some('G' | 'g') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    num.parse::<f64>()
        .ok()
        .map(|n| (n * mult).round())
        .filter(|v| v.is_finite() && *v >= 1.0 && *v <= 1e12)
        .map(|v| Some(v as u64))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "`{s}` is not a rate (frames/s, e.g. 500k, 2M, or max)"
            ))
        })
}

/// A CPU list: `0,2,5-7`.
///
/// # Errors
/// A malformed or inverted entry.
pub fn parse_cpus(s: &str) -> Result<Vec<usize>> {
    let bad = || Error::Invalid(format!("`{s}` is not a CPU list (e.g. 0,1 or 0-3)"));
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            None => out.push(part.parse().map_err(|_| bad())?),
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if b < a || b - a > 4096 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s| parse_duration(s).ok();
        assert_eq!(d("10s"), Some(Duration::from_secs(10)));
        assert_eq!(d("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(d("2m"), Some(Duration::from_secs(120)));
        assert_eq!(d("1.5"), Some(Duration::from_millis(1500)));
        for bad in ["", "0s", "ten", "5x", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("max").ok(), Some(None));
        assert_eq!(parse_rate("500k").ok(), Some(Some(500_000)));
        assert_eq!(parse_rate("1.5M").ok(), Some(Some(1_500_000)));
        assert_eq!(parse_rate("1000").ok(), Some(Some(1000)));
        for bad in ["0", "fast", "-5k", "k"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpus("0,2-4").ok(), Some(vec![0, 2, 3, 4]));
        assert!(parse_cpus("3-1").is_err());
        assert!(parse_cpus("a").is_err());
    }
}
