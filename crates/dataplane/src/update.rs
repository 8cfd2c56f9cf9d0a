//! Set changes in place: when a new config differs from the running one
//! only in its address tables (a set's entries changed, the rules did not),
//! the running program keeps running and switches tables.
//!
//! The address tables exist twice (generations 0 and 1; see `XW_GEN_SHIFT`
//! in bpf/abi.h). The new tables are written as the generation packets do
//! not use, then a write of the `xw_tables` value that changes only its
//! `gen` switches every CPU to them: each packet reads the generation once,
//! so it is judged wholly by the old or wholly by the new sets. After an
//! RCU grace period no packet can still be using the old generation; its
//! prefix entries are then deleted ([`retire`]), so the next change finds
//! the other generation empty. No program is loaded or verified, so this
//! takes as long as writing the entries.

use libbpf_rs::MapCore;
use xdpwall_rules::compile::Compiled;

use crate::error::{Error, Result};
use crate::instance::Instance;
use xdpwall_rules::compile::hashed4;

use crate::load::{delete_addresses, fill_addresses};
use crate::tables::Tables;

/// Why a change cannot be applied in place (then the program is replaced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotInPlace {
    /// More than the address tables changed (rules, classes, policies).
    NotOnlySets,
    /// The new prefixes do not fit beside the live ones in this table.
    Full(&'static str),
    /// The kernel cannot wait for an RCU grace period for us
    /// (MEMBARRIER_CMD_GLOBAL is missing, e.g. with nohz_full CPUs).
    NoGracePeriod,
}

/// The generation packets use now.
///
/// # Errors
/// The map cannot be read.
pub fn live_generation(inst: &Instance) -> Result<u32> {
    Ok(Tables::read(&inst.maps.tables)?.gen() & 1)
}

/// Checks that `new` can replace `live` (what `inst` runs) in place.
///
/// # Errors
/// [`NotInPlace`] says why not.
pub fn check(
    inst: &Instance,
    live: &Compiled,
    new: &Compiled,
) -> std::result::Result<(), NotInPlace> {
    if !live.differs_only_in_addresses(new) {
        return Err(NotInPlace::NotOnlySets);
    }
    if !grace_period_available() {
        return Err(NotInPlace::NoGracePeriod);
    }
    let m = &inst.maps;
    let tables = [
        (
            &m.src4,
            "xw_src4",
            hashed4(&live.src4, &live.src4_dir).count() + hashed4(&new.src4, &new.src4_dir).count(),
        ),
        (
            &m.dst4,
            "xw_dst4",
            hashed4(&live.dst4, &live.dst4_dir).count() + hashed4(&new.dst4, &new.dst4_dir).count(),
        ),
        (&m.src6, "xw_src6", live.src6.len() + new.src6.len()),
        (&m.dst6, "xw_dst6", live.dst6.len() + new.dst6.len()),
    ];
    for (map, name, need) in tables {
        if need > map.max_entries() as usize {
            return Err(NotInPlace::Full(name));
        }
    }
    // Each generation has its half of a node array.
    let nodes = [
        (&m.src4_n24, "xw_src4_n24", new.src4_nodes.n24.len()),
        (&m.src4_n32, "xw_src4_n32", new.src4_nodes.n32.len()),
        (&m.dst4_n24, "xw_dst4_n24", new.dst4_nodes.n24.len()),
        (&m.dst4_n32, "xw_dst4_n32", new.dst4_nodes.n32.len()),
        (&m.src4_lone, "xw_src4_lone", new.src4_nodes.lone.len()),
        (&m.dst4_lone, "xw_dst4_lone", new.dst4_nodes.lone.len()),
    ];
    for (map, name, need) in nodes {
        if need > (map.max_entries() / 2) as usize {
            return Err(NotInPlace::Full(name));
        }
    }
    Ok(())
}

/// Switches `inst` from `live` (its current tables) to `new`'s address
/// tables and waits until no packet uses the old ones; returns the
/// generation now in use. Call [`check`] first, and [`retire`] (with
/// `live`) before the next switch — it may wait until the caller has
/// answered whoever asked for the reload.
///
/// # Errors
/// A map write fails (packets then still use the live generation).
pub fn switch_sets(inst: &Instance, new: &Compiled) -> Result<u32> {
    let mut tables = Tables::read(&inst.maps.tables)?;
    let next = (tables.gen() & 1) ^ 1;
    fill_addresses(&inst.maps, &mut tables, new, next)?;
    // Two writes: the spare generation complete first, then the switch (a
    // value is copied in no promised order, so one write could switch
    // before the directories it switches to are there).
    tables.write(&inst.maps.tables, "fill")?;
    tables.set_gen(next);
    tables.write(&inst.maps.tables, "switch")?;
    grace_period()?;
    Ok(next)
}

/// Deletes the prefix entries of `old` (the tables [`switch_sets`] switched
/// away from), making room for the next switch.
///
/// # Errors
/// A map write fails.
pub fn retire(inst: &Instance, old: &Compiled) -> Result<()> {
    let gen = live_generation(inst)? ^ 1;
    delete_addresses(&inst.maps, old, gen)
}

const MEMBARRIER_CMD_QUERY: libc::c_long = 0;
const MEMBARRIER_CMD_GLOBAL: libc::c_long = 1;

/// Whether [`grace_period`] can work here: asked before switching, so a
/// kernel without it gets a new program instead of a half-done switch.
fn grace_period_available() -> bool {
    // SAFETY: membarrier takes two integer arguments and touches no memory.
    let rc = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_QUERY, 0) };
    rc > 0 && rc & MEMBARRIER_CMD_GLOBAL != 0
}

/// Waits until every CPU has left the code it was running: XDP programs
/// run inside RCU read-side sections, and MEMBARRIER_CMD_GLOBAL waits for
/// an RCU grace period (synchronize_rcu).
fn grace_period() -> Result<()> {
    // SAFETY: membarrier takes two integer arguments and touches no memory.
    let rc = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0) };
    if rc < 0 {
        return Err(Error::Sys {
            what: "waiting for packets on the old address tables (membarrier)".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}
