//! `xdpwall check CONFIG`.

use std::path::Path;

use anyhow::Result;

use crate::config::load_compiled;

/// Validates and prints the normalised rule table.
pub fn check(path: &Path) -> Result<()> {
    let (cfg, compiled) = load_compiled(path)?;
    print!("{}", xdpwall_rules::format_rule_table(&cfg));
    println!(
        "ok: {} rules compile to {} classes ({} fields used)",
        cfg.rules.len(),
        compiled.classes.len(),
        compiled.used_fields.count_ones()
    );
    Ok(())
}
