//! `[sets]`: named networks, inline or from set files (streamed line by line).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use toml::de::{DeTable, DeValue};

use super::value::{check_keys, field, mismatch, string};
use super::{section, Ctx, Value};
use crate::compile::limits::Limits;
use crate::error::Diagnostic;
use crate::input::{
    binary_at, open_regular, read_line_bounded, skip_line, InputError, Line, NotText,
    MAX_LINE_BYTES,
};
use crate::model::{IpSet, SetBuilder, SetEntries, SetSource};
use crate::table::thousands;

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
) -> (SetEntries, SetSource) {
    let label = format!("sets.{name}");
    match value.get_ref() {
        DeValue::Array(items) => (inline_entries(cx, &label, items), SetSource::Inline),
        DeValue::Table(table) => {
            let (entries, path) = file_entries(cx, &label, table, value, base);
            (entries, SetSource::File(path))
        }
        _ => {
            mismatch(cx, &label, value, SET_HINT);
            (SetEntries::default(), SetSource::Inline)
        }
    }
}

fn inline_entries(cx: &mut Ctx<'_>, label: &str, items: &[Value<'_>]) -> SetEntries {
    let mut entries = SetBuilder::default();
    for item in items {
        let Some(text) = string(cx, label, item, "a CIDR or IP address string") else {
            continue;
        };
        match parse_net(text.trim()) {
            Ok(net) => entries.push(net),
            Err(message) => cx.error(&item.span(), format!("{label}: {message}")),
        }
    }
    entries.finish()
}

fn file_entries(
    cx: &mut Ctx<'_>,
    label: &str,
    table: &DeTable<'_>,
    value: &Value<'_>,
    base: &Path,
) -> (SetEntries, PathBuf) {
    check_keys(cx, table, label, &["file"]);
    let Some(file_value) = field(table, "file") else {
        cx.error(
            &value.span(),
            format!("{label}: missing `file`; expected {SET_HINT}"),
        );
        return (SetEntries::default(), PathBuf::new());
    };
    let Some(file) = string(cx, &format!("{label}.file"), file_value, "a path string") else {
        return (SetEntries::default(), PathBuf::new());
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
            let message = format!("{label}: cannot read set file {}: {error}", path.display(),);
            cx.error(&file_value.span(), message);
            (SetEntries::default(), path)
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
    pub(crate) entries: SetEntries,
    /// The first bad lines, at the set file's own path and line.
    pub(crate) errors: Vec<Diagnostic>,
    /// How many lines were bad in all.
    pub(crate) bad_lines: usize,
}

/// Reads a set file: one CIDR or address per line, `#` comments.
///
/// The file is streamed: memory holds the entries (8 bytes per IPv4 prefix,
/// 17 per IPv6 prefix) and one line of at most [`MAX_LINE_BYTES`], however
/// big the file is.
pub(crate) fn read_set_file(path: &Path) -> Result<SetFile, InputError> {
    let (file, _) = open_regular(path)?;
    let max = Limits::default().trie_entries;
    Ok(read_set_lines(
        BufReader::with_capacity(1 << 16, file),
        path,
        max,
    )?)
}

/// Parses set-file lines from `reader`; `path` is used in diagnostics. More
/// than `max_prefixes` distinct prefixes of one family is an error (no trie
/// could hold them) and stops the reading, as does a binary line.
pub(crate) fn read_set_lines<R: BufRead>(
    mut reader: R,
    path: &Path,
    max_prefixes: usize,
) -> std::io::Result<SetFile> {
    let mut entries = SetBuilder::default();
    let mut out = SetFile {
        entries: SetEntries::default(),
        errors: Vec::new(),
        bad_lines: 0,
    };
    // Duplicates are only removed when the count passes the limit, and then
    // not again until `slack` more entries came, so a file of duplicates
    // costs a few sorts, not one per line.
    let slack = (max_prefixes / 4).max(1024);
    let mut next_compact = max_prefixes.saturating_add(slack);
    let mut buf = Vec::with_capacity(MAX_LINE_BYTES + 1);
    let mut line_no = 0;
    while let Some(line) = read_line_bounded(&mut reader, &mut buf, MAX_LINE_BYTES)? {
        line_no += 1;
        let report = |out: &mut SetFile, col, message| {
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
        };
        // Binary input is told by the line's start: a file of zeros with no
        // line end stops here, not after reading all of it.
        if let Some((offset, what)) = binary_at(&buf) {
            // A long line is cut after MAX_LINE_BYTES + 1 bytes, perhaps in
            // the middle of a character: that alone is not binary.
            let cut = line == Line::Long && offset + 4 > buf.len();
            if what == NotText::Nul || !cut {
                let message = format!(
                    "binary file? line has {what}; a set file is text, one CIDR or address per line"
                );
                report(&mut out, offset + 1, message);
                break;
            }
        }
        if line == Line::Long {
            let len = buf.len() + skip_line(&mut reader)?;
            let message = format!(
                "line is {len} bytes, over the limit of {MAX_LINE_BYTES} bytes per line; \
                 expected one CIDR or address per line"
            );
            report(&mut out, 1, message);
            continue;
        }
        if let Err((col, message)) = parse_set_line(&buf, &mut entries) {
            report(&mut out, col, message);
        }
        let (v4, v6) = entries.counts();
        if v4.max(v6) >= next_compact {
            entries.compact();
            let (v4, v6) = entries.counts();
            if over_limit(v4, v6, max_prefixes).is_some() {
                break;
            }
            next_compact = v4.max(v6).saturating_add(slack);
        }
    }
    out.entries = entries.finish();
    let (v4, v6) = (out.entries.v4().len(), out.entries.v6().len());
    // Shown even past MAX_FILE_ERRORS: it is why the set is refused.
    if let Some(message) = over_limit(v4, v6, max_prefixes) {
        out.errors.push(Diagnostic {
            path: path.to_path_buf(),
            line: line_no,
            col: 1,
            message,
        });
    }
    Ok(out)
}

/// The error when one family has more distinct prefixes than a trie holds.
fn over_limit(v4: usize, v6: usize, max: usize) -> Option<String> {
    let (n, family, maps) = [
        (v4, "IPv4", "xw_src4/xw_dst4"),
        (v6, "IPv6", "xw_src6/xw_dst6"),
    ]
    .into_iter()
    .find(|&(n, _, _)| n > max)?;
    Some(format!(
        "{} distinct {family} prefixes up to this line exceed the limit of {} per trie \
         ({maps} max_entries); aggregate prefixes or split the set",
        thousands(n as u64),
        thousands(max as u64),
    ))
}

/// Adds the line's entry, if any; on error returns the 1-based column and
/// message.
fn parse_set_line(raw: &[u8], entries: &mut SetBuilder) -> Result<(), (usize, String)> {
    let line = std::str::from_utf8(raw).map_err(|_| {
        (
            1,
            "line is not valid UTF-8; expected one CIDR or address".to_string(),
        )
    })?;
    let content = memchr::memchr(b'#', raw).map_or(line, |at| &line[..at]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::io::Cursor;

    const MAX: usize = 1 << 24;

    fn read_lines(text: impl Into<Vec<u8>>) -> SetFile {
        read_set_lines(Cursor::new(text.into()), Path::new("b.txt"), MAX).expect("read")
    }

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
        let out = read_lines(text);
        assert!(out.errors.is_empty());
        assert_eq!(
            out.entries.to_vec(),
            vec![net("10.0.0.0/8"), net("192.0.2.1/32"), net("2001:db8::/32")]
        );
    }

    #[test]
    fn set_line_errors_carry_file_line_and_token_column() {
        let text = "10.0.0.0/8\n  10.0.0.300\n1.2.3.4 extra\n\u{a0}\u{a0}bad 1.2.3.4\n";
        let out = read_set_lines(Cursor::new(text), Path::new("sets/b.txt"), MAX).expect("read");
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
        let out = read_lines(text);
        assert_eq!(out.bad_lines, 100);
        assert_eq!(out.errors.len(), MAX_FILE_ERRORS);
    }

    #[test]
    fn invalid_utf8_stops_the_file_as_binary() {
        let out = read_lines(b"10.0.0.0/8\n1.2.\xff\n10.0.0.1\n".to_vec());
        assert_eq!(out.errors.len(), 1);
        assert_eq!(
            out.errors[0].to_string(),
            "b.txt:2:5: binary file? line has invalid UTF-8; a set file is text, one CIDR or \
             address per line"
        );
        assert_eq!(out.entries.len(), 1, "reading stopped at the binary line");
    }

    #[test]
    fn nul_byte_is_binary() {
        let out = read_lines(b"10.0.0.0/8\n\x7fELF\x02\x01\x00\x00\n".to_vec());
        assert_eq!(out.bad_lines, 1);
        assert!(out.errors[0]
            .to_string()
            .starts_with("b.txt:2:7: binary file? line has a NUL byte"));
    }

    #[test]
    fn zeros_without_line_ends_stop_after_one_line_limit() {
        let mut zeros = Cursor::new(vec![0u8; 10 << 20]);
        let out = read_set_lines(&mut zeros, Path::new("b.txt"), MAX).expect("read");
        assert_eq!(
            out.errors[0].to_string(),
            "b.txt:1:1: binary file? line has a NUL byte; a set file is text, one CIDR or \
             address per line"
        );
        assert_eq!(
            zeros.position(),
            MAX_LINE_BYTES as u64 + 1,
            "read no further"
        );
    }

    #[test]
    fn huge_line_names_the_limit_and_reading_goes_on() {
        let text = format!("10.0.0.0/8\n{}\n192.0.2.1\n", "1".repeat(100_000));
        let out = read_lines(text);
        assert_eq!(
            out.errors[0].to_string(),
            "b.txt:2:1: line is 100000 bytes, over the limit of 4096 bytes per line; expected \
             one CIDR or address per line"
        );
        assert_eq!(out.entries.len(), 2);
        // A multi-byte character cut at the limit is not taken for binary.
        let text = format!("{}\n", "é".repeat(5000));
        let out = read_lines(text);
        assert!(out.errors[0].message.starts_with("line is 10000 bytes"));
    }

    #[test]
    fn too_many_prefixes_per_family_are_refused_with_the_limit() {
        let mut text = String::new();
        for i in 0..3000u32 {
            let [a, b, c, d] = (0x0a00_0000 + i).to_be_bytes();
            text.push_str(&format!("{a}.{b}.{c}.{d}\n"));
        }
        let out =
            read_set_lines(Cursor::new(text.clone()), Path::new("b.txt"), 3000).expect("read");
        assert!(out.errors.is_empty(), "at the limit is fine");
        let out = read_set_lines(Cursor::new(text), Path::new("b.txt"), 2000).expect("read");
        assert_eq!(
            out.errors[0].to_string(),
            "b.txt:3000:1: 3,000 distinct IPv4 prefixes up to this line exceed the limit of \
             2,000 per trie (xw_src4/xw_dst4 max_entries); aggregate prefixes or split the set"
        );
        // A longer file stops being read (and stored) soon after the limit.
        let mut text = String::new();
        for i in 0..100_000u32 {
            let a = std::net::Ipv6Addr::from((0x2001_0db8u128 << 96) | u128::from(i));
            text.push_str(&format!("{a}\n"));
        }
        let out = read_set_lines(Cursor::new(text), Path::new("b.txt"), 2000).expect("read");
        assert_eq!(out.errors.len(), 1);
        assert!(out.errors[0].to_string().starts_with(
            "b.txt:3024:1: 3,024 distinct IPv6 prefixes up to this line exceed the limit of 2,000 \
             per trie (xw_src6/xw_dst6 max_entries)"
        ));
        assert_eq!(out.entries.len(), 3024);
        // Duplicates do not count: 10,000 lines of 10 prefixes are fine.
        let dups = "10.0.0.1\n10.0.0.2\n10.0.0.3\n10.0.0.4\n10.0.0.5\n".repeat(2000);
        let out = read_set_lines(Cursor::new(dups), Path::new("b.txt"), 10).expect("read");
        assert!(out.errors.is_empty());
        assert_eq!(out.entries.len(), 5);
    }

    #[test]
    fn set_file_that_is_not_a_file_is_a_clear_error() {
        let dir = TempDir::new("setkind");
        let sub = dir.0.join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        let err = read_set_file(&sub).expect_err("directory");
        assert_eq!(err.to_string(), "is a directory; expected a file");
        let err = read_set_file(Path::new("/dev/zero")).expect_err("device");
        assert!(err.to_string().contains("character device"));
        let bin = dir.write_bytes("bin", b"\x7fELF\x02\x01\x01\x00\x00");
        let out = read_set_file(&bin).expect("opens");
        assert!(out.errors[0].message.starts_with("binary file?"));
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
        let all = out.entries.to_vec();
        assert_eq!(all[0], net("10.0.0.0/32"));
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert!(all.contains(&net("2001:db8:3:d3f::/64")));
    }
}
