//! `rules.toml` → validated [`Config`]: the config front end.
//!
//! Every problem is collected as a [`Diagnostic`] carrying the `line:col` of
//! the offending key or value (or the set file's own path and line), so one
//! run reports as many errors as it can find.

mod action;
mod check;
mod cond;
mod events;
mod rule;
mod sets;
mod value;

#[cfg(test)]
mod tests;

use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::error::{ConfigError, Diagnostic};
use crate::input::{binary_at, line_col, read_capped, InputError, MAX_CONFIG_BYTES};
use crate::model::{Config, Mode, Verdict, XdpSection};

pub(crate) use cond::{proto_name, TCP_FLAGS};

use value::{check_keys, field, interface_name, keyword};

/// A byte range in the config text.
pub(crate) type Span = Range<usize>;
/// A TOML value with its byte range.
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

const TOP_KEYS: &[&str] = &["xdp", "events", "sets", "rule"];
const XDP_KEYS: &[&str] = &[
    "interface",
    "mode",
    "default",
    "malformed",
    "rate_limit_table",
];
const MODES: &[(&str, Mode)] = &[
    ("auto", Mode::Auto),
    ("native", Mode::Native),
    ("generic", Mode::Generic),
];
const VERDICTS: &[(&str, Verdict)] = &[("pass", Verdict::Pass), ("drop", Verdict::Drop)];

/// Reads and validates the config file at `path`.
///
/// Set files named in `[sets]` are resolved relative to `path`'s directory.
/// The config must be a regular file of at most [`MAX_CONFIG_BYTES`] of
/// UTF-8 text.
///
/// # Errors
/// [`ConfigError::Io`] if the file cannot be read (or is no regular file, or
/// too big), [`ConfigError::Invalid`] with every problem found otherwise.
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    let bytes = read_capped(path, MAX_CONFIG_BYTES, "config size limit").map_err(|error| {
        ConfigError::Io {
            path: path.to_path_buf(),
            error,
        }
    })?;
    if let Some((offset, what)) = binary_at(&bytes) {
        let (line, col) = line_col(&bytes, offset);
        return Err(ConfigError::Invalid(vec![Diagnostic {
            path: path.to_path_buf(),
            line,
            col,
            message: format!("binary file? found {what}; a config is UTF-8 TOML text"),
        }]));
    }
    let text = String::from_utf8(bytes).map_err(|e| ConfigError::Io {
        path: path.to_path_buf(),
        error: InputError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
    })?;
    parse_config(&text, path)
}

/// Validates config `text` that was read from `path`.
///
/// `path` is used in diagnostics and to resolve set files (relative to its
/// directory); it is not read itself.
///
/// # Errors
/// [`ConfigError::Invalid`] with every problem found.
pub fn parse_config(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let mut cx = Ctx::new(text, path);
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for error in &syntax_errors {
            cx.error(&error.span().unwrap_or(0..0), syntax_message(text, error));
        }
        return cx.finish(None);
    }
    let root = root.into_inner();
    check_top_keys(&mut cx, &root);
    let base = path.parent().unwrap_or(Path::new(""));
    let sets = sets::parse_sets(&mut cx, field(&root, "sets"), base);
    let config = Config {
        path: path.to_path_buf(),
        xdp: parse_xdp(&mut cx, field(&root, "xdp")),
        events: events::parse_events(&mut cx, field(&root, "events")),
        rules: rule::parse_rules(&mut cx, field(&root, "rule"), &sets),
        sets,
    };
    cx.finish(Some(config))
}

/// Where diagnostics go while one config is validated.
pub(crate) struct Ctx<'a> {
    text: &'a str,
    path: &'a Path,
    line_starts: Vec<usize>,
    config_diags: Vec<Diagnostic>,
    file_diags: Vec<Diagnostic>,
}

impl<'a> Ctx<'a> {
    fn new(text: &'a str, path: &'a Path) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Self {
            text,
            path,
            line_starts,
            config_diags: Vec::new(),
            file_diags: Vec::new(),
        }
    }

    /// Reports `message` at the start of `span` in the config.
    pub(crate) fn error(&mut self, span: &Span, message: impl Into<String>) {
        let (line, col) = self.position(span.start);
        let path = self.path.to_path_buf();
        self.config_diags.push(Diagnostic {
            path,
            line,
            col,
            message: message.into(),
        });
    }

    /// Reports a problem located in another file (a set file).
    pub(crate) fn file_error(&mut self, diagnostic: Diagnostic) {
        self.file_diags.push(diagnostic);
    }

    /// Number of problems reported so far.
    pub(crate) fn error_count(&self) -> usize {
        self.config_diags.len() + self.file_diags.len()
    }

    /// 1-based line of byte `offset`.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// 1-based line and column (in characters) of byte `offset`.
    fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.line_of(offset).max(1);
        let start = self.line_starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line, col + 1)
    }

    /// `Ok(value)` if nothing was reported, else every diagnostic: the
    /// config's in position order, then those in set files.
    fn finish<T>(mut self, value: Option<T>) -> Result<T, ConfigError> {
        if self.error_count() == 0 {
            if let Some(value) = value {
                return Ok(value);
            }
        }
        self.config_diags.sort_by_key(|d| (d.line, d.col));
        self.config_diags.append(&mut self.file_diags);
        Err(ConfigError::Invalid(self.config_diags))
    }
}

/// The parser's message, naming the key for duplicates.
fn syntax_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end_matches('.');
    let key = error.span().and_then(|span| text.get(span)).unwrap_or("");
    if message == "duplicate key" && !key.is_empty() {
        format!("duplicate key `{key}`; each key may be set once per table")
    } else {
        format!("invalid TOML: {message}")
    }
}

fn check_top_keys(cx: &mut Ctx<'_>, root: &DeTable<'_>) {
    for (key, _) in root.iter() {
        if !TOP_KEYS.contains(&key.get_ref().as_ref()) {
            let message = format!(
                "unknown section `{}`; expected one of: [xdp], [events], [sets], [[rule]]",
                key.get_ref()
            );
            cx.error(&key.span(), message);
        }
    }
}

/// The table of section `[name]`, reporting a non-table value.
pub(crate) fn section<'v, 'i>(
    cx: &mut Ctx<'_>,
    name: &str,
    value: Option<&'v Value<'i>>,
) -> Option<&'v DeTable<'i>> {
    let value = value?;
    let expected = format!("a table (write a [{name}] section)");
    value::table(cx, name, value, &expected)
}

fn parse_xdp(cx: &mut Ctx<'_>, value: Option<&Value<'_>>) -> XdpSection {
    let mut xdp = XdpSection::default();
    let Some(table) = section(cx, "xdp", value) else {
        return xdp;
    };
    check_keys(cx, table, "[xdp]", XDP_KEYS);
    if let Some(v) = field(table, "interface") {
        xdp.interface = interface_name(cx, "interface", v);
    }
    if let Some(mode) = field(table, "mode").and_then(|v| keyword(cx, "mode", v, MODES)) {
        xdp.mode = mode;
    }
    if let Some(d) = field(table, "default").and_then(|v| keyword(cx, "default", v, VERDICTS)) {
        xdp.default = d;
    }
    if let Some(m) = field(table, "malformed").and_then(|v| keyword(cx, "malformed", v, VERDICTS)) {
        xdp.malformed = m;
    }
    if let Some(v) = field(table, "rate_limit_table") {
        let max = crate::model::MAX_RATE_LIMIT_TABLE;
        if let Some(n) = value::int_min(cx, "rate_limit_table", v, 1, i128::from(max)) {
            xdp.rate_limit_table = u32::try_from(n).unwrap_or(max);
        }
    }
    xdp
}
