//! `[sets]`: named networks, inline or from set files (streamed line by line).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use toml::de::{DeTable, DeValue};

use super::value::{check_keys, field, mismatch, string};
use super::{section, Ctx, Value};
use crate::error::{io_message, Diagnostic};
use crate::model::{IpSet, SetSource};

/// Bad lines reported per set file; the rest are only counted.
const MAX_FILE_ERRORS: usize = 20;
const SET_HINT: &str = "a list of CIDRs or { file = \"path\" }";

/// Parses `[sets]`. Every set with a valid name is returned, even one whose
/// entries had errors, so rules referring to it are not also reported.
pub(super) fn parse_sets(
    cx: &mut Ctx<'_>,
    value: Option<&Value<'_>>,
    base: &Path,
) -> BTreeMap<String, IpSet> {
    let mut sets = BTreeMap::new();
    let Some(table) = section(cx, "sets", value) else {
        return sets;
    };
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        if !valid_set_name(&name) {
            let message =
                format!("set name `{name}` is not valid; use letters, digits, `_` and `-` only");
            cx.error(&key.span(), message);
            continue;
        }
        let (entries, source) = parse_set(cx, &name, value, base);
        sets.insert(
            name.clone(),
            IpSet {
                name,
                entries,
                source,
            },
        );
    }
    sets
}

/// Whether `name` matches `[A-Za-z0-9_-]+`.
pub(crate) fn valid_set_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn parse_set(
    cx: &mut Ctx<'_>,
    name: &str,
    value: &Value<'_>,
    base: &Path,
) -> (Vec<IpNet>, SetSource) {
    let label = format!("sets.{name}");
    match value.get_ref() {
        DeValue::Array(items) => (inline_entries(cx, &label, items), SetSource::Inline),
        DeValue::Table(table) => {
            let (entries, path) = file_entries(cx, &label, table, value, base);
            (entries, SetSource::File(path))
        }
        _ => {
            mismatch(cx, &label, value, SET_HINT);
            (Vec::new(), SetSource::Inline)
        }
    }
}

fn inline_entries(cx: &mut Ctx<'_>, label: &str, items: &[Value<'_>]) -> Vec<IpNet> {
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let Some(text) = string(cx, label, item, "a CIDR or IP address string") else {
            continue;
        };
        match parse_net(text.trim()) {
            Ok(net) => entries.push(net),
            Err(message) => cx.error(&item.span(), format!("{label}: {message}")),
        }
    }
    normalise(entries)
}

fn file_entries(
    cx: &mut Ctx<'_>,
    label: &str,
    table: &DeTable<'_>,
    value: &Value<'_>,
    base: &Path,
) -> (Vec<IpNet>, PathBuf) {
    check_keys(cx, table, label, &["file"]);
    let Some(file_value) = field(table, "file") else {
        cx.error(
            &value.span(),
            format!("{label}: missing `file`; expected {SET_HINT}"),
        );
        return (Vec::new(), PathBuf::new());
    };
    let Some(file) = string(cx, &format!("{label}.file"), file_value, "a path string") else {
        return (Vec::new(), PathBuf::new());
    };
    let path = base.join(file);
    match read_set_file(&path) {
        Ok(set_file) => {
            report_bad_lines(cx, label, file_value, &set_file);
            for diagnostic in set_file.errors {
                cx.file_error(diagnostic);
            }
            (set_file.entries, path)
        }
        Err(error) => {
            let message = format!(
                "{label}: cannot read set file {}: {}",
                path.display(),
                io_message(&error)
            );
            cx.error(&file_value.span(), message);
            (Vec::new(), path)
        }
    }
}

/// Summarises bad lines beyond those reported one by one.
fn report_bad_lines(cx: &mut Ctx<'_>, label: &str, at: &Value<'_>, set_file: &SetFile) {
    let hidden = set_file.bad_lines.saturating_sub(set_file.errors.len());
    if hidden > 0 {
        let message = format!(
            "{label}: set file has {} bad lines; {hidden} more not shown",
            set_file.bad_lines
        );
        cx.error(&at.span(), message);
    }
}

/// The outcome of reading one set file.
#[derive(Debug)]
pub(crate) struct SetFile {
    /// Valid entries, normalised and deduplicated.
    pub(crate) entries: Vec<IpNet>,
    /// The first bad lines, at the set file's own path and line.
    pub(crate) errors: Vec<Diagnostic>,
    /// How many lines were bad in all.
    pub(crate) bad_lines: usize,
}

/// Reads a set file: one CIDR or address per line, `#` comments.
pub(crate) fn read_set_file(path: &Path) -> std::io::Result<SetFile> {
    let file = File::open(path)?;
    read_set_lines(BufReader::with_capacity(1 << 16, file), path)
}

/// Parses set-file lines from `reader`; `path` is used in diagnostics.
pub(crate) fn read_set_lines<R: BufRead>(mut reader: R, path: &Path) -> std::io::Result<SetFile> {
    let mut out = SetFile {
        entries: Vec::new(),
        errors: Vec::new(),
        bad_lines: 0,
    };
    let mut buf = Vec::with_capacity(128);
    let mut line_no = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        if let Err((col, message)) = parse_set_line(&buf, &mut out.entries) {
            out.bad_lines += 1;
            if out.errors.len() < MAX_FILE_ERRORS {
                let path = path.to_path_buf();
                out.errors.push(Diagnostic {
                    path,
                    line: line_no,
                    col,
                    message,
                });
            }
        }
    }
    out.entries = normalise(out.entries);
    Ok(out)
}

/// Adds the line's entry, if any; on error returns the 1-based column and
/// message.
fn parse_set_line(raw: &[u8], entries: &mut Vec<IpNet>) -> Result<(), (usize, String)> {
    let line = std::str::from_utf8(raw).map_err(|_| {
        (
            1,
            "line is not valid UTF-8; expected one CIDR or address".to_string(),
        )
    })?;
    let content = line.split('#').next().unwrap_or("");
    let mut tokens = content.split_whitespace();
    let Some(token) = tokens.next() else {
        return Ok(());
    };
    let net = parse_net(token).map_err(|message| (column_of(line, token), message))?;
    if let Some(extra) = tokens.next() {
        let message = format!("unexpected `{extra}`; expected one CIDR or address per line");
        return Err((column_of(line, extra), message));
    }
    entries.push(net);
    Ok(())
}

/// 1-based character column of `token`, a subslice of `line`.
fn column_of(line: &str, token: &str) -> usize {
    let offset = (token.as_ptr() as usize).saturating_sub(line.as_ptr() as usize);
    line.get(..offset)
        .map_or(1, |prefix| prefix.chars().count() + 1)
}

/// A CIDR (`10.0.0.0/8`, `2001:db8::/32`) or plain address (→ /32, /128),
/// host bits cleared.
pub(crate) fn parse_net(text: &str) -> Result<IpNet, String> {
    let (addr_text, prefix_text) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let addr: IpAddr = addr_text.parse().map_err(|_| {
        format!("`{text}` is not a CIDR or IP address; expected e.g. 192.0.2.0/24 or 2001:db8::1")
    })?;
    let Some(prefix_text) = prefix_text else {
        return Ok(IpNet::from(addr));
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix_text
        .parse::<u8>()
        .ok()
        .filter(|p| *p <= max && prefix_text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("`{text}`: prefix `/{prefix_text}` is out of range 0-{max}"))?;
    IpNet::new(addr, prefix)
        .map(|net| net.trunc())
        .map_err(|e| format!("`{text}`: {e}"))
}

/// Clears host bits, sorts, removes duplicates.
pub(crate) fn normalise(mut entries: Vec<IpNet>) -> Vec<IpNet> {
    for net in &mut entries {
        *net = net.trunc();
    }
    entries.sort_unstable();
    entries.dedup();
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn net(s: &str) -> IpNet {
        s.parse().expect("test net")
    }

    #[test]
    fn parse_net_accepts_cidrs_and_addresses() {
        assert_eq!(parse_net("10.1.2.3/8"), Ok(net("10.0.0.0/8")));
        assert_eq!(parse_net("192.0.2.10"), Ok(net("192.0.2.10/32")));
        assert_eq!(parse_net("2001:db8::1"), Ok(net("2001:db8::1/128")));
        assert_eq!(parse_net("2001:db8:1::5/64"), Ok(net("2001:db8:1::/64")));
        assert!(parse_net("10.0.0.0/33")
            .err()
            .is_some_and(|e| e.contains("out of range 0-32")));
        assert!(parse_net("::/129")
            .err()
            .is_some_and(|e| e.contains("out of range 0-128")));
        assert!(parse_net("10.0.0/8")
            .err()
            .is_some_and(|e| e.contains("is not a CIDR or IP address")));
        assert!(parse_net("10.0.0.0/+8").is_err());
    }

    #[test]
    fn set_lines_comments_blanks_and_dedup() {
        let text = "# header\n\n10.0.0.1/8  # trailing\r\n  2001:db8::/32\n10.0.0.0/8\n192.0.2.1\n";
        let out = read_set_lines(Cursor::new(text), Path::new("b.txt")).expect("read");
        assert!(out.errors.is_empty());
        assert_eq!(
            out.entries,
            vec![net("10.0.0.0/8"), net("192.0.2.1/32"), net("2001:db8::/32")]
        );
    }

    #[test]
    fn set_line_errors_carry_file_line_and_token_column() {
        let text = "10.0.0.0/8\n  10.0.0.300\n1.2.3.4 extra\n\u{a0}\u{a0}bad 1.2.3.4\n";
        let out = read_set_lines(Cursor::new(text), Path::new("sets/b.txt")).expect("read");
        let shown: Vec<String> = out.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "sets/b.txt:2:3: `10.0.0.300` is not a CIDR or IP address; expected e.g. \
                 192.0.2.0/24 or 2001:db8::1",
                "sets/b.txt:3:9: unexpected `extra`; expected one CIDR or address per line",
                "sets/b.txt:4:3: `bad` is not a CIDR or IP address; expected e.g. \
                 192.0.2.0/24 or 2001:db8::1",
            ]
        );
        assert_eq!(out.bad_lines, 3);
    }

    #[test]
    fn many_bad_lines_are_capped() {
        let text = "bad\n".repeat(100);
        let out = read_set_lines(Cursor::new(text), Path::new("b.txt")).expect("read");
        assert_eq!(out.bad_lines, 100);
        assert_eq!(out.errors.len(), MAX_FILE_ERRORS);
    }

    #[test]
    fn invalid_utf8_line_is_reported() {
        let out = read_set_lines(Cursor::new(b"10.0.0.0/8\n\xff\n".to_vec()), Path::new("b"))
            .expect("read");
        assert_eq!(out.errors[0].line, 2);
        assert!(out.errors[0].message.contains("not valid UTF-8"));
    }

    /// Benchmark-ish: a generated 200k-line file parses completely and
    /// correctly (timing is measured by `xdpwall bench`, not here).
    #[test]
    fn large_generated_set_file() {
        let mut text = String::with_capacity(200_000 * 20);
        for i in 0..200_000u32 {
            if i % 2 == 0 {
                let [a, b, c, d] = (0x0A00_0000 + i).to_be_bytes();
                text.push_str(&format!("{a}.{b}.{c}.{d}\n"));
            } else {
                text.push_str(&format!(
                    "2001:db8:{:x}:{:x}::/64 # v6\n",
                    i >> 16,
                    i & 0xffff
                ));
            }
        }
        let dir = std::env::temp_dir().join(format!("xdpwall-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("big.txt");
        std::fs::write(&path, &text).expect("write");
        let out = read_set_file(&path).expect("read");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(out.bad_lines, 0);
        assert_eq!(out.entries.len(), 200_000);
        assert_eq!(out.entries[0], net("10.0.0.0/32"));
        assert!(out.entries.windows(2).all(|w| w[0] < w[1]));
        assert!(out.entries.contains(&net("2001:db8:3:d3f::/64")));
    }
}
