//! dist/xdpwall@.service: the commands it runs exist with the flags it
//! passes, systemd accepts the unit, and its hardening stays strict.

use std::path::PathBuf;
use std::process::Command;

use crate::fixtures::{ci, output, xdpwall, TempDir, BIN, CMD_TIMEOUT};

fn unit_text() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dist/xdpwall@.service");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The unit with the installed binary's path replaced by this build's,
/// instantiated for `eth0`.
fn instantiated(dir: &TempDir) -> PathBuf {
    dir.write(
        "xdpwall@eth0.service",
        unit_text().replace("/usr/local/bin/xdpwall", BIN),
    )
}

#[test]
fn unit_commands_exist_with_their_flags() {
    let text = unit_text();
    let mut seen = 0;
    for line in text.lines() {
        let Some((key, cmd)) = line.split_once('=') else {
            continue;
        };
        if !key.starts_with("Exec") {
            continue;
        }
        let words: Vec<&str> = cmd.split_whitespace().collect();
        assert_eq!(words[0], "/usr/local/bin/xdpwall", "{line}");
        let help = xdpwall(&[words[1], "--help"]);
        help.assert_ok();
        for flag in words.iter().filter(|w| w.starts_with("--")) {
            assert!(
                help.stdout.contains(flag),
                "`xdpwall {}` has no {flag} ({line})",
                words[1]
            );
        }
        seen += 1;
    }
    assert_eq!(seen, 3, "ExecStartPre, ExecStart, ExecReload");
    assert!(text.contains("Type=notify"), "run notifies readiness");
}

fn analyze(args: &[&str]) -> Option<crate::fixtures::Out> {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            !ci(),
            "systemd-analyze is missing (scripts/setup.sh installs systemd)"
        );
        eprintln!("skipped: systemd-analyze is not installed");
        return None;
    }
    Some(output(
        Command::new("systemd-analyze").args(args),
        CMD_TIMEOUT,
    ))
}

#[test]
fn systemd_accepts_the_unit_and_it_is_hardened() {
    let dir = TempDir::new("unit");
    let unit = instantiated(&dir);
    let unit = unit.to_str().expect("utf-8 path");
    let Some(verify) = analyze(&["verify", "--man=no", unit]) else {
        return;
    };
    verify.assert_ok();
    assert!(verify.stderr.trim().is_empty(), "{}", verify.describe());

    let Some(sec) = analyze(&["security", "--offline=true", "--no-pager", unit]) else {
        return;
    };
    // "Overall exposure level for xdpwall@eth0.service: 2.7 OK"
    let level: f64 = sec
        .stdout
        .lines()
        .find_map(|l| {
            l.split_once("Overall exposure level for ")?
                .1
                .split_once(": ")
        })
        .and_then(|(_, v)| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{}", sec.describe()));
    assert!(
        level <= 3.0,
        "exposure {level} (was 2.7): hardening regressed"
    );
}
