//! `xdpwall detach --iface IF`.

use anyhow::{Context, Result};
use xdpwall_dataplane::attach;

/// Removes xdpwall (or with `force`, any XDP program) from `iface`.
pub fn detach(iface: &str, force: bool) -> Result<()> {
    let id = attach::detach(iface, force).with_context(|| format!("cannot detach from {iface}"))?;
    println!("detached XDP program id {id} from {iface}");
    Ok(())
}
