//! `[[rule]]`: names, conditions, action, logging; the rule count limit.

use std::collections::{BTreeMap, HashMap};

use toml::de::{DeTable, DeValue};

use super::action::{parse_action, parse_log, parse_sample};
use super::check::check_conditions;
use super::cond::parse_conditions;
use super::value::{check_keys, field, string};
use super::{Ctx, Span, Value};
use crate::compile::limits::MAX_NAME_BYTES;
use crate::model::{IpSet, Rule, MAX_RULES};

/// Every key a `[[rule]]` may have.
const RULE_KEYS: &[&str] = &[
    "name",
    "src",
    "dst",
    "proto",
    "sport",
    "dport",
    "tcp_flags",
    "icmp_type",
    "icmp_code",
    "family",
    "vlan",
    "fragment",
    "action",
    "redirect",
    "rate_limit",
    "log",
    "sample",
];

/// Parses all `[[rule]]` tables in file order.
pub(super) fn parse_rules(
    cx: &mut Ctx<'_>,
    value: Option<&Value<'_>>,
    sets: &BTreeMap<String, IpSet>,
) -> Vec<Rule> {
    let Some(value) = value else {
        return Vec::new();
    };
    let DeValue::Array(items) = value.get_ref() else {
        let message = "rule: expected an array of tables; write each rule as [[rule]]";
        cx.error(&value.span(), message);
        return Vec::new();
    };
    let mut names = HashMap::new();
    let mut rules = Vec::with_capacity(items.len().min(MAX_RULES));
    for (index, item) in items.iter().enumerate() {
        if index == MAX_RULES {
            let message = format!(
                "too many rules: {} (the maximum is {MAX_RULES})",
                items.len()
            );
            cx.error(&item.span(), message);
            break;
        }
        let DeValue::Table(table) = item.get_ref() else {
            cx.error(
                &item.span(),
                "rule: expected a table; write each rule as [[rule]]",
            );
            continue;
        };
        if let Some(rule) = parse_rule(cx, table, &item.span(), sets, &mut names) {
            rules.push(rule);
        }
    }
    rules
}

/// One rule; `None` if anything in it was wrong (already reported).
fn parse_rule(
    cx: &mut Ctx<'_>,
    t: &DeTable<'_>,
    header: &Span,
    sets: &BTreeMap<String, IpSet>,
    names: &mut HashMap<String, usize>,
) -> Option<Rule> {
    let errors_before = cx.error_count();
    check_keys(cx, t, "[[rule]]", RULE_KEYS);
    let name = parse_name(cx, t, header, names);
    let cond = parse_conditions(cx, t, sets);
    check_conditions(cx, t, &cond);
    let action = parse_action(cx, t, header);
    let log = field(t, "log").map(|v| parse_log(cx, v));
    let sample = field(t, "sample").map(|v| parse_sample(cx, v));
    if cx.error_count() > errors_before {
        return None;
    }
    Some(Rule {
        name: name?,
        line: cx.line_of(header.start),
        cond,
        action: action?,
        log: log.flatten().flatten(),
        sample: sample.flatten(),
    })
}

/// The required, unique `name`; records it in `names` with its line.
fn parse_name(
    cx: &mut Ctx<'_>,
    t: &DeTable<'_>,
    header: &Span,
    names: &mut HashMap<String, usize>,
) -> Option<String> {
    let Some(value) = field(t, "name") else {
        cx.error(
            header,
            "rule has no `name`; every [[rule]] needs a unique name",
        );
        return None;
    };
    let name = string(cx, "name", value, "a string")?;
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        cx.error(
            &value.span(),
            format!("name: `{name}` is not a usable rule name"),
        );
        return None;
    }
    if name.len() > MAX_NAME_BYTES {
        // The data plane stores names in a fixed field (`struct xw_rule`);
        // cutting them could make two names one.
        let message = format!(
            "name: `{name}` is {} bytes, over the limit of {MAX_NAME_BYTES} bytes \
             (struct xw_rule name); use a shorter name",
            name.len()
        );
        cx.error(&value.span(), message);
        return None;
    }
    let line = cx.line_of(header.start);
    if let Some(first) = names.get(name) {
        let message = format!("duplicate rule name `{name}`; first defined at line {first}");
        cx.error(&value.span(), message);
        return None;
    }
    names.insert(name.to_string(), line);
    Some(name.to_string())
}
