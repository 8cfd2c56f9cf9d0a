//! `[events]`: transport, buffer size, snaplen, wake-up policy.

use toml::de::DeValue;

use super::value::{check_keys, field, int_min, int_range, keyword, mismatch};
use super::{section, Ctx, Value};
use crate::model::{EventsSection, Transport, Wakeup};

const EVENTS_KEYS: &[&str] = &["transport", "buffer", "snaplen", "wakeup"];
const TRANSPORTS: &[(&str, Transport)] = &[
    ("ringbuf", Transport::Ringbuf),
    ("perfbuf", Transport::Perfbuf),
];
/// Smallest buffer: one page.
const MIN_BUFFER: u64 = 4096;
/// Largest buffer: the biggest power of two a map's `u32` size can hold.
const MAX_BUFFER: u64 = 1 << 31;
const SIZE_HINT: &str = "bytes as an integer or a string like \"512KiB\", \"8MiB\", \"1GiB\"";

pub(super) fn parse_events(cx: &mut Ctx<'_>, value: Option<&Value<'_>>) -> EventsSection {
    let mut events = EventsSection::default();
    let Some(table) = section(cx, "events", value) else {
        return events;
    };
    check_keys(cx, table, "[events]", EVENTS_KEYS);
    if let Some(t) = field(table, "transport").and_then(|v| keyword(cx, "transport", v, TRANSPORTS))
    {
        events.transport = t;
    }
    if let Some(buffer) = field(table, "buffer").and_then(|v| parse_buffer(cx, v)) {
        events.buffer = buffer;
    }
    if let Some(n) = field(table, "snaplen").and_then(|v| int_range(cx, "snaplen", v, 0, 65535)) {
        events.snaplen = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(wakeup) = field(table, "wakeup").and_then(|v| parse_wakeup(cx, v)) {
        events.wakeup = wakeup;
    }
    events
}

fn parse_buffer(cx: &mut Ctx<'_>, value: &Value<'_>) -> Option<u64> {
    let bytes = match value.get_ref() {
        DeValue::Integer(_) => {
            let n = int_min(cx, "buffer", value, 0, i128::from(u64::MAX))?;
            u64::try_from(n).ok()?
        }
        DeValue::String(text) => match parse_size(text) {
            Some(n) => n,
            None => {
                let message = format!("buffer: `{text}` is not a size; expected {SIZE_HINT}");
                cx.error(&value.span(), message);
                return None;
            }
        },
        _ => {
            mismatch(cx, "buffer", value, SIZE_HINT);
            return None;
        }
    };
    check_buffer(cx, value, bytes)
}

fn check_buffer(cx: &mut Ctx<'_>, value: &Value<'_>, bytes: u64) -> Option<u64> {
    if bytes.is_power_of_two() && (MIN_BUFFER..=MAX_BUFFER).contains(&bytes) {
        return Some(bytes);
    }
    let message = format!(
        "buffer: {bytes} bytes is not allowed; it must be a power of two from 4096 (4KiB) \
         to 2GiB, e.g. \"8MiB\""
    );
    cx.error(&value.span(), message);
    None
}

/// `"8MiB"`, `"512KiB"`, `"1GiB"`, `"4096"` or `"4096B"` → bytes.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

fn parse_wakeup(cx: &mut Ctx<'_>, value: &Value<'_>) -> Option<Wakeup> {
    const EXPECTED: &str = "\"every\", \"adaptive\" or a number of records N >= 1";
    match value.get_ref() {
        DeValue::Integer(_) => {
            let n = int_min(cx, "wakeup", value, 1, i128::from(u32::MAX))?;
            u32::try_from(n).ok().map(Wakeup::Batch)
        }
        DeValue::String(text) if text.trim().eq_ignore_ascii_case("every") => Some(Wakeup::Every),
        DeValue::String(text) if text.trim().eq_ignore_ascii_case("adaptive") => {
            Some(Wakeup::Adaptive)
        }
        DeValue::String(text) => {
            cx.error(
                &value.span(),
                format!("wakeup: unknown value `{text}`; expected {EXPECTED}"),
            );
            None
        }
        _ => {
            mismatch(cx, "wakeup", value, EXPECTED);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8MiB"), Some(8 << 20));
        assert_eq!(parse_size("512KiB"), Some(512 << 10));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("4096B"), Some(4096));
        assert_eq!(parse_size("8MB"), None);
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("99999999999999GiB"), None);
    }
}
