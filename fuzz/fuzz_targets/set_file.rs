//! Set-file parser. `read_set_lines` is `pub(crate)`, so the bytes go
//! through the public route: a temp file referenced from `[sets]`.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn paths() -> &'static (PathBuf, String) {
    static P: OnceLock<(PathBuf, String)> = OnceLock::new();
    P.get_or_init(|| {
        let file = std::env::temp_dir().join(format!("xdpwall-fuzz-set-{}.txt", std::process::id()));
        let cfg = format!(
            "[sets]\nx = {{ file = \"{}\" }}\n\n[[rule]]\nname = \"r\"\nsrc = \"@x\"\naction = \"drop\"\n",
            file.display()
        );
        (file, cfg)
    })
}

fuzz_target!(|data: &[u8]| {
    let (file, cfg_text) = paths();
    std::fs::write(file, data).expect("write temp set file");
    if let Ok(cfg) = xdpwall_rules::parse_config(cfg_text, Path::new("fuzz.toml")) {
        let _ = xdpwall_rules::compile::compile(&cfg);
        let _ = xdpwall_rules::format_rule_table(&cfg);
    }
});
