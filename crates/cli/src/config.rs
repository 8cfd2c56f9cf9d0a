//! Loading and compiling a config, with config errors mapped to exit 2.

use std::path::Path;

use anyhow::Result;
use xdpwall_rules::compile::{compile, Compiled};
use xdpwall_rules::{load_config, Config};

use crate::exit::usage;

/// Reads and validates CONFIG (exit 2 with `path:line:col: message` lines).
/// Run as root, warns on stderr about a config or set file others can change.
pub fn load(path: &Path) -> Result<Config> {
    let cfg = load_config(path).map_err(|e| usage(e.to_string()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        for warning in xdpwall_rules::perms::permission_warnings(&cfg) {
            log::warn!("{warning}");
        }
    }
    Ok(cfg)
}

/// Reads, validates and compiles CONFIG.
pub fn load_compiled(path: &Path) -> Result<(Config, Compiled)> {
    let cfg = load(path)?;
    let compiled = compile(&cfg).map_err(|e| usage(e.to_string()))?;
    Ok((cfg, compiled))
}

/// Checks that every `redirect` target exists in this network namespace
/// (`run` and reload; `check` and `replay` do not need the interfaces).
/// Exit 2 with `path:line:1: message` per missing target.
pub fn check_redirect_targets(cfg: &Config) -> Result<()> {
    let mut errors = Vec::new();
    for r in &cfg.rules {
        if let xdpwall_rules::Action::Redirect(ifname) = &r.action {
            if xdpwall_dataplane::instance::ifindex(ifname).is_err() {
                errors.push(format!(
                    "{}:{}:1: rule `{}`: redirect target {ifname} is not an interface in this \
                     network namespace; create it first (it must be in the same namespace as \
                     the interface xdpwall runs on) or fix the rule",
                    cfg.path.display(),
                    r.line,
                    r.name
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(usage(errors.join("\n")))
    }
}

/// How long each step of getting a config into the kernel took.
#[derive(Debug, Default, Clone, Copy)]
pub struct Timings {
    /// Reading and validating the config and its set files.
    pub parse: std::time::Duration,
    /// Compiling rules into classes and trie entries.
    pub compile: std::time::Duration,
}

/// Like [`load_compiled`], also timing each step.
pub fn load_compiled_timed(path: &Path) -> Result<(Config, Compiled, Timings)> {
    let t = std::time::Instant::now();
    let cfg = load(path)?;
    let parse = t.elapsed();
    let t = std::time::Instant::now();
    let compiled = compile(&cfg).map_err(|e| usage(e.to_string()))?;
    Ok((
        cfg,
        compiled,
        Timings {
            parse,
            compile: t.elapsed(),
        },
    ))
}
