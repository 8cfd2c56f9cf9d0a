//! Log lines of the long-running commands (`run`, `top`'s warnings): on a
//! terminal or a pipe, `xdpwall: message` and `xdpwall: warning: message`
//! on stderr, as users and scripts read them; under systemd (stderr
//! connected to the journal), native journal entries that carry their
//! priority, so `journalctl -p warning -u xdpwall@eth0` finds the warnings.
//! `XDPWALL_LOG=debug` shows more.

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The stderr logger.
struct Stderr;

/// One stderr line for a record.
fn line(level: Level, msg: &std::fmt::Arguments<'_>) -> String {
    match level {
        Level::Error => format!("xdpwall: error: {msg}"),
        Level::Warn => format!("xdpwall: warning: {msg}"),
        Level::Info => format!("xdpwall: {msg}"),
        Level::Debug | Level::Trace => format!("xdpwall: debug: {msg}"),
    }
}

impl Log for Stderr {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("{}", line(r.level(), r.args()));
        }
    }

    fn flush(&self) {}
}

static STDERR: Stderr = Stderr;

fn level_from_env() -> LevelFilter {
    match std::env::var("XDPWALL_LOG").as_deref() {
        Ok("debug") => LevelFilter::Debug,
        Ok("trace") => LevelFilter::Trace,
        Ok("warn" | "warning") => LevelFilter::Warn,
        Ok("error") => LevelFilter::Error,
        _ => LevelFilter::Info,
    }
}

/// Installs the logger (once, at start-up).
pub fn init() {
    let journal = systemd_journal_logger::connected_to_journal()
        .then(systemd_journal_logger::JournalLog::new)
        .and_then(Result::ok)
        .map(|j| j.with_syslog_identifier("xdpwall".into()));
    let installed = match journal {
        Some(j) => j.install(),
        None => log::set_logger(&STDERR),
    };
    if installed.is_ok() {
        log::set_max_level(level_from_env());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_lines_keep_the_familiar_prefixes() {
        assert_eq!(
            line(Level::Info, &format_args!("attached to eth0")),
            "xdpwall: attached to eth0"
        );
        assert_eq!(
            line(Level::Warn, &format_args!("config is world-writable")),
            "xdpwall: warning: config is world-writable"
        );
        assert_eq!(
            line(Level::Error, &format_args!("event output failed")),
            "xdpwall: error: event output failed"
        );
    }
}
