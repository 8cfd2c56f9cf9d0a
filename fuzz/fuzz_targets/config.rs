//! Config parser: arbitrary text must give `Ok` or diagnostics, never a
//! panic; an accepted config must also compile and format.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(cfg) = xdpwall_rules::parse_config(&text, Path::new("fuzz.toml")) {
        let _ = xdpwall_rules::compile::compile(&cfg);
        let _ = xdpwall_rules::format_rule_table(&cfg);
    }
});
