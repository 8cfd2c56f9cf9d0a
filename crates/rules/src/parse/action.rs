//! A rule's action (`action`, or the `redirect` / `rate_limit` shorthands),
//! `log` and `sample`.

use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::value::{
    check_keys, field, int_min, int_range, interface_name, key_span, keyword, mismatch, string,
    table,
};
use super::{Ctx, Span, Value};
use crate::model::{Action, LogSpec, RateBy, RateLimit};

/// Keys that can give a rule its action; exactly one must be present.
const ACTION_KEYS: &[&str] = &["action", "redirect", "rate_limit"];
const ACTION_HINT: &str = "\"pass\", \"drop\", \"count\", { redirect = \"ifname\" } or \
                           { rate_limit = { pps = N, burst = N, by = \"src\" } }";
const RATE_KEYS: &[&str] = &["pps", "burst", "by"];
const RATE_BY: &[(&str, RateBy)] = &[("src", RateBy::Src), ("rule", RateBy::Rule)];
const DURATION_HINT: &str = "an integer with ns, us, ms, s or m, e.g. \"100ms\"";

/// The rule's action; `header` is the `[[rule]]` span for a missing action.
pub(super) fn parse_action(cx: &mut Ctx<'_>, t: &DeTable<'_>, header: &Span) -> Option<Action> {
    let mut given: Vec<(&str, Span)> = ACTION_KEYS
        .iter()
        .filter_map(|k| key_span(t, k).map(|s| (*k, s)))
        .collect();
    given.sort_by_key(|(_, span)| span.start);
    match given.as_slice() {
        [] => {
            cx.error(
                header,
                format!("rule has no action; add action = {ACTION_HINT}"),
            );
            None
        }
        [(key, _)] => {
            let value = field(t, key)?;
            match *key {
                "redirect" => interface_name(cx, "redirect", value).map(Action::Redirect),
                "rate_limit" => parse_rate_limit(cx, "rate_limit", value).map(Action::RateLimit),
                _ => action_value(cx, value),
            }
        }
        [(first, _), (second, span), ..] => {
            let message =
                format!("`{second}` and `{first}` both set the action; use exactly one of them");
            cx.error(span, message);
            None
        }
    }
}

fn action_value(cx: &mut Ctx<'_>, value: &Value<'_>) -> Option<Action> {
    match value.get_ref() {
        DeValue::String(text) => action_word(cx, value, text),
        DeValue::Table(t) => action_table(cx, value, t),
        _ => {
            mismatch(cx, "action", value, ACTION_HINT);
            None
        }
    }
}

fn action_word(cx: &mut Ctx<'_>, value: &Value<'_>, text: &str) -> Option<Action> {
    let message = match text.trim().to_ascii_lowercase().as_str() {
        "pass" => return Some(Action::Pass),
        "drop" => return Some(Action::Drop),
        "count" => return Some(Action::Count),
        "redirect" => {
            "action: redirect needs a target; write action = { redirect = \"eth1\" }".to_string()
        }
        "rate_limit" => "action: rate_limit needs limits; write action = { rate_limit = \
                         { pps = N, burst = N } }"
            .to_string(),
        _ => format!("action: unknown action `{text}`; expected {ACTION_HINT}"),
    };
    cx.error(&value.span(), message);
    None
}

fn action_table(cx: &mut Ctx<'_>, value: &Value<'_>, t: &DeTable<'_>) -> Option<Action> {
    check_keys(cx, t, "action", &["redirect", "rate_limit"]);
    let redirect = field(t, "redirect");
    let rate_limit = field(t, "rate_limit");
    match (redirect, rate_limit) {
        (Some(v), None) => interface_name(cx, "action.redirect", v).map(Action::Redirect),
        (None, Some(v)) => parse_rate_limit(cx, "action.rate_limit", v).map(Action::RateLimit),
        _ => {
            let message = format!(
                "action: expected exactly one of redirect or rate_limit, as in \
                                   {ACTION_HINT}"
            );
            cx.error(&value.span(), message);
            None
        }
    }
}

fn parse_rate_limit(cx: &mut Ctx<'_>, label: &str, value: &Value<'_>) -> Option<RateLimit> {
    let hint = "{ pps = N, burst = N, by = \"src\" | \"rule\" }";
    let t = table(cx, label, value, hint)?;
    check_keys(cx, t, label, RATE_KEYS);
    let number = |cx: &mut Ctx<'_>, key: &str| -> Option<u64> {
        let full = format!("{label}.{key}");
        let Some(v) = field(t, key) else {
            cx.error(
                &value.span(),
                format!("{label}: missing `{key}`; expected {hint}"),
            );
            return None;
        };
        // Up to 1e9 each: the data plane's nanotoken bucket must not overflow.
        int_min(cx, &full, v, 1, 1_000_000_000).and_then(|n| u64::try_from(n).ok())
    };
    let pps = number(cx, "pps");
    let burst = number(cx, "burst");
    let by = match field(t, "by") {
        Some(v) => Some(keyword(cx, &format!("{label}.by"), v, RATE_BY)?),
        None => Some(RateBy::Src),
    };
    Some(RateLimit {
        pps: pps?,
        burst: burst?,
        by: by?,
    })
}

/// `log = true | false | { every, snaplen }`; `Some(None)` for `false`.
pub(super) fn parse_log(cx: &mut Ctx<'_>, value: &Value<'_>) -> Option<Option<LogSpec>> {
    const HINT: &str = "true, false or { every = \"1s\", snaplen = N }";
    match value.get_ref() {
        DeValue::Boolean(true) => Some(Some(LogSpec::default())),
        DeValue::Boolean(false) => Some(None),
        DeValue::Table(t) => log_table(cx, t).map(Some),
        _ => {
            mismatch(cx, "log", value, HINT);
            None
        }
    }
}

fn log_table(cx: &mut Ctx<'_>, t: &DeTable<'_>) -> Option<LogSpec> {
    check_keys(cx, t, "log", &["every", "snaplen"]);
    let every = field(t, "every").map(|v| every(cx, v));
    let snaplen = field(t, "snaplen")
        .map(|v| int_range(cx, "log.snaplen", v, 0, 65535).and_then(|n| u32::try_from(n).ok()));
    if every == Some(None) || snaplen == Some(None) {
        return None;
    }
    Some(LogSpec {
        every: every.flatten(),
        snaplen: snaplen.flatten(),
    })
}

fn every(cx: &mut Ctx<'_>, value: &Value<'_>) -> Option<Duration> {
    let text = string(cx, "log.every", value, DURATION_HINT)?;
    match parse_duration(text) {
        Some(d) if d.is_zero() => {
            cx.error(
                &value.span(),
                "log.every: must be more than 0; omit `every` to log every match",
            );
            None
        }
        Some(d) => Some(d),
        None => {
            cx.error(
                &value.span(),
                format!("log.every: `{text}` is not a duration; expected {DURATION_HINT}"),
            );
            None
        }
    }
}

/// `"100ms"`, `"1s"`, `"2m"`, `"500us"`, `"10ns"` → a duration.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let digits_end = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(digits_end);
    let n: u64 = digits.parse().ok()?;
    match unit.trim() {
        "ns" => Some(Duration::from_nanos(n)),
        "us" => Some(Duration::from_micros(n)),
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        _ => None,
    }
}

/// `sample = N`, N >= 1.
pub(super) fn parse_sample(cx: &mut Ctx<'_>, value: &Value<'_>) -> Option<u32> {
    int_min(cx, "sample", value, 1, i128::from(u32::MAX)).and_then(|n| u32::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse_duration("7ns"), Some(Duration::from_nanos(7)));
        assert_eq!(parse_duration("1.5s"), None);
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("1h"), None);
    }
}
