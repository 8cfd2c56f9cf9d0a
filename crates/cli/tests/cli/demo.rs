//! `xdpwall demo` end to end (needs root; takes about 10 s).

use std::process::Command;
use std::time::Duration;

use xdpwall_lab::require_root;

use crate::fixtures::{output, BIN};

fn netns_names() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn demo_runs_and_cleans_up() {
    if !require_root("demo_runs_and_cleans_up") {
        return;
    }
    let mut cmd = Command::new(BIN);
    cmd.arg("demo");
    let out = output(&mut cmd, Duration::from_secs(120));
    out.assert_code(0);
    let s = &out.stdout;
    for needle in [
        "building a throwaway lab",
        "attached to xwb",
        "round 1/3",
        "round 3/3",
        "RULE",
        "ssh-drop",
        "udp-high-drop",
        "drop-blocklist",
        "detached, namespaces and veth pair removed",
    ] {
        assert!(
            s.contains(needle),
            "demo output lacks {needle:?}\n{}",
            out.describe()
        );
    }
    // The counter tables show traffic: ssh-drop dropped something.
    let ssh_rows: Vec<u64> = s
        .lines()
        .filter_map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c.first() == Some(&"ssh-drop") && c.get(1) == Some(&"drop"))
                .then(|| c.get(2)?.parse().ok())
                .flatten()
        })
        .collect();
    assert!(
        ssh_rows.len() >= 3 && ssh_rows.iter().all(|&n| n > 0),
        "{ssh_rows:?}\n{s}"
    );
    // Its namespaces (named after its pid) are gone.
    let prefix = format!("xw-{}-", out.pid);
    let left: Vec<String> = netns_names()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "demo left namespaces behind: {left:?}");
}
