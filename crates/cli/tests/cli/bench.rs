//! `bench dataplane` end to end with tiny windows: every receiver is set
//! up, dropped the generator's frames by its own rule, and was torn down.
//! About 20 s, so not in the default run: `cargo test -p xdpwall --test cli
//! -- --ignored bench_dataplane` (root). `bench transport`: usage errors,
//! and a small real run with its JSON re-drawn (root, a few seconds).
//! `bench classify`: a small real run (root, ~15 s of program loads on
//! every CPU, so like the dataplane one it runs with `--ignored`).

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
    let v = read_json(&json);
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

#[test]
fn bench_transport_refuses_bad_options_and_foreign_json() {
    for (args, want) in [
        (
            vec!["--reps", "0"],
            "--events and --reps must be at least 1",
        ),
        (vec!["--producers", "3"], "--producers 3: 1 or 2"),
        (vec!["--snaplen", "2000"], "--snaplen 2000: at most 1500"),
        (vec!["--buffer-mib", "3"], "--buffer-mib 3: a power of two"),
        (
            vec!["--transport", "perfbuf", "--wakeup", "adaptive"],
            "--wakeup adaptive is the ring buffer's alone",
        ),
    ] {
        let mut all = vec!["bench", "transport"];
        all.extend(args);
        let out = xdpwall(&all);
        assert_eq!(out.code(), Some(2), "{}", out.describe());
        assert!(out.stderr.contains(want), "{}", out.describe());
    }
    let dir = TempDir::new("tr-bad");
    let bad = dir.path().join("other.json");
    std::fs::write(&bad, "{\"bench\": \"classify\"}").expect("write");
    let out = xdpwall(&["bench", "transport", "--from-json", &bad.to_string_lossy()]);
    assert_eq!(out.code(), Some(2), "{}", out.describe());
    assert!(
        out.stderr.contains("not a `bench transport --json` result"),
        "{}",
        out.describe()
    );
}

/// A small real run (one producer, one record size, one repetition) with
/// JSON and charts, then the same report re-drawn from the JSON.
#[test]
fn bench_transport_small_run_writes_table_targets_json_and_charts() {
    if !require_root("bench_transport_small_run_writes_table_targets_json_and_charts") {
        return;
    }
    let dir = TempDir::new("tr");
    let (json, svg) = (dir.path().join("t.json"), dir.path().join("t.svg"));
    let (json_s, svg_s) = (
        json.to_string_lossy().into_owned(),
        svg.to_string_lossy().into_owned(),
    );
    let out = xdpwall(&[
        "bench",
        "transport",
        "--events",
        "3000",
        "--reps",
        "1",
        "--producers",
        "1",
        "--snaplen",
        "64",
        "--drain-reps",
        "1",
        "--json",
        &json_s,
        "--svg",
        &svg_s,
    ]);
    out.assert_ok();
    assert!(out.stdout.contains("| ringbuf | 0 |"), "{}", out.describe());
    assert!(out.stdout.contains("### Targets"), "{}", out.describe());
    assert!(out.stdout.contains("(a) met in"), "{}", out.describe());
    // The drains: both consumers emptied a filled buffer, per transport.
    let drains = v_drains(&json);
    assert_eq!(drains.len(), 2, "{}", out.describe());
    for d in &drains {
        assert_eq!(d["rust_ns"].as_array().map(Vec::len), Some(1), "{d}");
        assert!(d["rust_ns"][0].as_f64().unwrap_or(0.0) > 0.0, "{d}");
        // The C consumer is built with xdpwall (CI has its compiler).
        assert_eq!(d["c_ns"].as_array().map(Vec::len), Some(1), "{d}");
    }
    assert!(out.stdout.contains("drains."), "{}", out.describe());
    let v = read_json(&json);
    let rows = v["rows"].as_array().cloned().unwrap_or_default();
    // 3 ring + 2 perf wake-ups, epoll and busy, each Rust and C (the C
    // consumer is built with xdpwall).
    assert_eq!(rows.len(), 20, "{}", out.describe());
    let perf_mmap = rows
        .iter()
        .find(|r| r["transport"] == "perfbuf")
        .map(|r| r["perf_mmap_bytes"].clone());
    for r in &rows {
        assert_eq!(
            r["produced"].as_u64(),
            Some(r["delivered"].as_u64().unwrap_or(0) + r["lost"].as_u64().unwrap_or(0))
        );
        // Both consumers hold the same perf buffer, or Rust vs C would
        // compare buffer sizes.
        if r["transport"] == "perfbuf" {
            assert!(r["perf_mmap_bytes"].as_u64().unwrap_or(0) > 0, "{r}");
            assert_eq!(Some(&r["perf_mmap_bytes"]), perf_mmap.as_ref(), "{r}");
        }
    }
    // One row group per consumer kind (1 producer x 1 size).
    let groups = v["targets"]["ring_vs_perf"].as_array().map_or(0, Vec::len);
    assert_eq!(groups * 5, rows.len(), "{}", out.describe());
    let chart = std::fs::read_to_string(&svg).unwrap_or_default();
    assert!(
        chart.contains("ringbuf 1p 104 B adaptive · Rust epoll"),
        "{chart}"
    );
    assert!(dir.path().join("t-order.svg").exists());
    // Re-drawn from the JSON: the same targets, nothing measured.
    let again = xdpwall(&["bench", "transport", "--from-json", &json_s]);
    again.assert_ok();
    assert!(again.stdout.contains("### Targets"), "{}", again.describe());
    assert_eq!(
        again
            .stdout
            .lines()
            .filter(|l| l.starts_with("| ringbuf |"))
            .count(),
        out.stdout
            .lines()
            .filter(|l| l.starts_with("| ringbuf |"))
            .count()
    );
}

/// A bench's `--json` file (Null when missing or not JSON: the test's
/// assertions on it then fail and say so).
fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_default()).unwrap_or_default()
}

fn v_drains(json: &std::path::Path) -> Vec<Value> {
    let v = read_json(json);
    v["drain"].as_array().cloned().unwrap_or_default()
}

/// `--transport`, `--wakeup` and `--poll` narrow the matrix to the cells
/// asked for.
#[test]
fn bench_transport_runs_only_the_chosen_cells() {
    if !require_root("bench_transport_runs_only_the_chosen_cells") {
        return;
    }
    let dir = TempDir::new("tr-only");
    let json = dir.path().join("t.json");
    let out = xdpwall(&[
        "bench",
        "transport",
        "--events",
        "2000",
        "--reps",
        "1",
        "--producers",
        "1",
        "--snaplen",
        "16",
        "--transport",
        "perfbuf",
        "--wakeup",
        "batch,adaptive",
        "--poll",
        "busy",
        "--drain-reps",
        "0",
        "--json",
        &json.to_string_lossy(),
    ]);
    out.assert_ok();
    let v = read_json(&json);
    let rows = v["rows"].as_array().cloned().unwrap_or_default();
    // One cell (adaptive has no perf form): xdpwall's consumer, and the C one.
    assert_eq!(rows.len(), 2, "{}", out.describe());
    assert!(v_drains(&json).is_empty(), "--drain-reps 0 drains nothing");
    for r in &rows {
        assert_eq!(r["transport"], "perfbuf", "{r}");
        assert_eq!(r["wakeup"]["batch"], 64, "{r}");
        assert!(
            r["consumer"].as_str().unwrap_or("").ends_with("busy"),
            "{r}"
        );
    }
}

/// `bench classify` end to end, small: every cell timed on both copies of
/// its program, the probes checked against the reference classifier (the
/// bench refuses otherwise), and the JSON carrying each copy's minimum.
#[test]
#[ignore = "about 15 s of program loads on every CPU, which starves the suite's timing tests; run with --ignored"]
fn bench_classify_small_run_times_both_copies_of_every_program() {
    if !require_root("bench_classify_small_run_times_both_copies_of_every_program") {
        return;
    }
    let dir = TempDir::new("cl");
    let json = dir.path().join("c.json");
    let out = xdpwall(&[
        "bench",
        "classify",
        "--rules",
        "20",
        "--set-entries",
        "100",
        "--repeat",
        "1000",
        "--runs",
        "2",
        "--json",
        &json.to_string_lossy(),
    ]);
    out.assert_code(0);
    assert!(
        out.stdout
            .contains("on each of 2 separately loaded copies of every program"),
        "{}",
        out.describe()
    );
    let v = read_json(&json);
    assert_eq!(v["copies"], 2, "{v}");
    let cells = v["cells"].as_array().cloned().unwrap_or_default();
    // rules: 3 rows x 6 probes; sets: 2 x 3; peers: at least bare and
    // xdpwall x 2 (xdp-filter's rows when it is installed).
    assert!(cells.len() >= 18 + 6 + 4, "{} cells", cells.len());
    for c in &cells {
        let by_copy: Vec<f64> = c["min_ns_by_copy"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        let min = c["min_ns"].as_f64().unwrap_or(f64::NAN);
        assert_eq!(by_copy.len(), 2, "{c}");
        assert!(by_copy.iter().all(|&ns| ns > 0.0), "{c}");
        assert!(
            (min - by_copy[0].min(by_copy[1])).abs() < 1e-9,
            "the cell's minimum is its better copy's: {c}"
        );
        assert!(c["ratio"].as_f64().is_some_and(f64::is_finite), "{c}");
    }
}
