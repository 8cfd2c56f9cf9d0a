//! `xdpwall reload [--iface IF]`: asks the `run` serving the interface to
//! re-read its config, and reports the outcome.

use std::time::Duration;

use anyhow::Result;

use crate::cmd::stats::pick_iface;
use crate::control::{request, Cmd, Reply};
use crate::exit::Failure;

/// Loading a million-entry set takes seconds; a wedged `run` should not
/// hang a script forever.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `reload`.
///
/// # Errors
/// No `run` serves the interface, or the reload failed (exit 2 for config
/// errors, as `check` would report them).
pub fn reload(iface: Option<String>) -> Result<()> {
    let iface = pick_iface(iface)?;
    match request(&iface, Cmd::Reload, TIMEOUT)? {
        Reply::Ok(text) => {
            println!("xdpwall: {iface}: {text}");
            Ok(())
        }
        Reply::Failed(code, text) => Err(Failure {
            code,
            // The text already says the previous rules stay in force.
            // main prefixes "xdpwall: " to runtime errors, not to exit 2.
            message: if code == 2 {
                format!("xdpwall: {iface}: {text}")
            } else {
                format!("{iface}: {text}")
            },
        }
        .into()),
    }
}
