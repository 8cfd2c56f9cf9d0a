//! `bench dataplane` end to end with tiny windows: every receiver is set
//! up, dropped the generator's frames by its own rule, and was torn down.
//! About 20 s, so not in the default run: `cargo test -p xdpwall --test cli
//! -- --ignored bench_dataplane` (root).

use serde_json::Value;
use xdpwall_lab::require_root;

use crate::fixtures::{xdpwall, TempDir};

#[test]
#[ignore = "about 20 s; run with --ignored"]
fn bench_dataplane_smoke() {
    if !require_root("bench_dataplane_smoke") {
        return;
    }
    let dir = TempDir::new("dp");
    let json = dir.path().join("dp.json");
    let svg = dir.path().join("dp.svg");
    let (json_s, svg_s) = (
        json.to_string_lossy().into_owned(),
        svg.to_string_lossy().into_owned(),
    );
    let out = xdpwall(&[
        "bench",
        "dataplane",
        "--reps",
        "1",
        "--window",
        "100ms",
        "--warmup",
        "50ms",
        "--rules",
        "50",
        "--set-entries",
        "500",
        "--json",
        &json_s,
        "--svg",
        &svg_s,
    ]);
    out.assert_code(0);
    assert!(
        out.stdout.contains("| XDP_DROP (bare program) |"),
        "{}",
        out.describe()
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default())
        .unwrap_or_default();
    let rows = v["rows"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 12, "every receiver has a row");
    for r in &rows {
        let name = r["name"].as_str().unwrap_or("?");
        if let Some(why) = r["skipped"].as_str() {
            assert!(
                why.contains("not installed"),
                "{name}: only a missing peer may be skipped: {why}"
            );
            continue;
        }
        let s = &r["samples"][0];
        assert!(
            s["mpps"].as_f64().unwrap_or(0.0) > 0.0,
            "{name}: nothing received"
        );
        if let Some(share) = s["dropped_share"].as_f64() {
            assert!(
                share >= 0.99,
                "{name}: its rule dropped only {share} of the frames"
            );
        } else {
            assert!(
                name.starts_with("no filter"),
                "{name}: no drop counter read"
            );
        }
    }
    assert!(std::fs::read_to_string(&svg)
        .unwrap_or_default()
        .contains("XDP_DROP (bare program)"));
    // Nothing is left behind: no xdp-filter pins.
    assert!(
        !std::path::Path::new("/sys/fs/bpf/xdp-filter").exists(),
        "xdp-filter state left in bpffs"
    );
}
