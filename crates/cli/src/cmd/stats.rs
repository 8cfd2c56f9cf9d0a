//! `xdpwall stats [--iface IF] [--json]`.

use anyhow::{bail, Context, Result};
use xdpwall_dataplane::attach::{self, AttachMode};
use xdpwall_dataplane::{stats, xdperr, Instance};

use crate::output::{stats_json, stats_table, EventCounts, Header};

/// Interfaces of this network namespace that run xdpwall.
pub fn running_ifaces() -> Vec<String> {
    let mut out = Vec::new();
    // SAFETY: if_nameindex returns an array terminated by a zero entry, freed below.
    unsafe {
        let list = libc::if_nameindex();
        if list.is_null() {
            return out;
        }
        let mut p = list;
        while (*p).if_index != 0 {
            let idx = (*p).if_index;
            let name = std::ffi::CStr::from_ptr((*p).if_name)
                .to_string_lossy()
                .into_owned();
            if matches!(attach::current(idx), Ok(Some(c)) if c.is_ours()) {
                out.push(name);
            }
            p = p.add(1);
        }
        libc::if_freenameindex(list);
    }
    out
}

/// The interface to act on: the given one, or the only one running xdpwall.
pub fn pick_iface(iface: Option<String>) -> Result<String> {
    if let Some(i) = iface {
        return Ok(i);
    }
    let found = running_ifaces();
    match found.len() {
        0 => bail!("xdpwall is not running on any interface in this network namespace"),
        1 => Ok(found[0].clone()),
        _ => Err(crate::exit::usage(format!(
            "xdpwall runs on several interfaces here ({}); pick one with --iface",
            found.join(", ")
        ))),
    }
}

/// Mode name recorded by `run`.
pub fn mode_name(inst: &Instance) -> &'static str {
    inst.info()
        .ok()
        .and_then(|i| AttachMode::from_code(i.mode))
        .map_or("unknown", AttachMode::name)
}

/// Prints the counters of the instance on `iface`.
pub fn stats(iface: Option<String>, json: bool) -> Result<()> {
    let iface = pick_iface(iface)?;
    let inst = attach::find(&iface)?;
    let s = stats::read(&inst).with_context(|| format!("cannot read counters on {iface}"))?;
    let info = inst.info().unwrap_or_default();
    let k = stats::events(&inst).unwrap_or_default();
    let h = Header {
        iface: &iface,
        mode: mode_name(&inst),
        transport: crate::cmd::run::transport_name(info.transport),
        events: EventCounts {
            produced: k.produced,
            delivered: info.delivered,
            lost: k.lost,
        },
        xdp_errors: Some(
            xdperr::read(&inst).with_context(|| format!("cannot read XDP errors on {iface}"))?,
        ),
        xdp_counting: xdperr::counting_programs(&inst).ok().map(|p| !p.is_empty()),
    };
    if json {
        println!("{}", stats_json(&h, &s));
    } else {
        print!("{}", stats_table(&h, &s, None));
    }
    Ok(())
}
