//! Typed access to spanned TOML values; every mismatch is reported through
//! [`Ctx`] at the value's position and yields `None`.

use toml::de::{DeTable, DeValue};

use super::{Ctx, Span, Value};

/// `value`'s type as named in messages.
pub(crate) fn type_name(value: &Value<'_>) -> &'static str {
    match value.get_ref() {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The value of `key` in `table`.
pub(crate) fn field<'t, 'i>(table: &'t DeTable<'i>, key: &str) -> Option<&'t Value<'i>> {
    table.get(key)
}

/// The span of `key` itself (not its value) in `table`.
pub(crate) fn key_span(table: &DeTable<'_>, key: &str) -> Option<Span> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(k, _)| k.span())
}

/// Reports every key of `table` not in `allowed`; `place` is e.g. `[xdp]`.
pub(crate) fn check_keys(cx: &mut Ctx<'_>, table: &DeTable<'_>, place: &str, allowed: &[&str]) {
    for (key, _) in table.iter() {
        if !allowed.contains(&key.get_ref().as_ref()) {
            let message = format!(
                "unknown key `{}` in {place}; expected one of: {}",
                key.get_ref(),
                allowed.join(", ")
            );
            cx.error(&key.span(), message);
        }
    }
}

/// Reports a type mismatch: `label: expected EXPECTED, found a TYPE`.
pub(crate) fn mismatch(cx: &mut Ctx<'_>, label: &str, value: &Value<'_>, expected: &str) {
    let message = format!("{label}: expected {expected}, found {}", type_name(value));
    cx.error(&value.span(), message);
}

/// A string value.
pub(crate) fn string<'v>(
    cx: &mut Ctx<'_>,
    label: &str,
    value: &'v Value<'_>,
    expected: &str,
) -> Option<&'v str> {
    match value.get_ref() {
        DeValue::String(s) => Some(s.as_ref()),
        _ => {
            mismatch(cx, label, value, expected);
            None
        }
    }
}

/// A table value.
pub(crate) fn table<'v, 'i>(
    cx: &mut Ctx<'_>,
    label: &str,
    value: &'v Value<'i>,
    expected: &str,
) -> Option<&'v DeTable<'i>> {
    match value.get_ref() {
        DeValue::Table(t) => Some(t),
        _ => {
            mismatch(cx, label, value, expected);
            None
        }
    }
}

/// An integer value, however large (TOML integers are at most 64-bit).
pub(crate) fn integer(cx: &mut Ctx<'_>, label: &str, value: &Value<'_>) -> Option<i128> {
    let DeValue::Integer(int) = value.get_ref() else {
        mismatch(cx, label, value, "an integer");
        return None;
    };
    match i128::from_str_radix(int.as_str(), int.radix()) {
        Ok(n) => Some(n),
        Err(_) => {
            cx.error(
                &value.span(),
                format!("{label}: {int} is not a valid integer"),
            );
            None
        }
    }
}

/// An integer in `lo..=hi`: `label: N is out of range LO-HI` otherwise.
pub(crate) fn int_range(
    cx: &mut Ctx<'_>,
    label: &str,
    value: &Value<'_>,
    lo: i128,
    hi: i128,
) -> Option<i128> {
    let n = integer(cx, label, value)?;
    if (lo..=hi).contains(&n) {
        Some(n)
    } else {
        cx.error(
            &value.span(),
            format!("{label}: {n} is out of range {lo}-{hi}"),
        );
        None
    }
}

/// An integer `>= min` (and `<= max`, a technical limit).
pub(crate) fn int_min(
    cx: &mut Ctx<'_>,
    label: &str,
    value: &Value<'_>,
    min: i128,
    max: i128,
) -> Option<i128> {
    let n = integer(cx, label, value)?;
    if n < min {
        cx.error(
            &value.span(),
            format!("{label}: {n} is too small; it must be at least {min}"),
        );
        None
    } else if n > max {
        cx.error(
            &value.span(),
            format!("{label}: {n} is too large; the maximum is {max}"),
        );
        None
    } else {
        Some(n)
    }
}

/// One of the named `options` (case-insensitive).
pub(crate) fn keyword<T: Copy>(
    cx: &mut Ctx<'_>,
    label: &str,
    value: &Value<'_>,
    options: &[(&str, T)],
) -> Option<T> {
    let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
    let expected = format!("one of: {}", names.join(", "));
    let text = string(cx, label, value, &expected)?;
    let found = options
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()));
    if found.is_none() {
        cx.error(
            &value.span(),
            format!("{label}: unknown value `{text}`; expected {expected}"),
        );
    }
    found.map(|(_, v)| *v)
}

/// A Linux interface name (as `dev_valid_name` accepts it).
pub(crate) fn interface_name(cx: &mut Ctx<'_>, label: &str, value: &Value<'_>) -> Option<String> {
    let name = string(cx, label, value, "an interface name")?;
    let problem = if name.is_empty() {
        Some("is empty".to_string())
    } else if name.len() > 15 {
        Some(format!("is {} bytes long; the maximum is 15", name.len()))
    } else if name == "." || name == ".." {
        Some("is not valid".to_string())
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some("must not contain `/`, `:` or spaces".to_string())
    } else {
        None
    };
    match problem {
        None => Some(name.to_string()),
        Some(problem) => {
            cx.error(
                &value.span(),
                format!("{label}: interface name `{name}` {problem}"),
            );
            None
        }
    }
}
