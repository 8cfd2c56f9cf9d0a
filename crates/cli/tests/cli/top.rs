//! `xdpwall top` end to end: it refuses to run without a terminal; in a
//! pseudo-terminal (util-linux `script`, 80×24) inside a lab namespace it
//! finds the running instance like `stats`, shows the source of dropped
//! traffic from the tap (no rule logs), turns the tap off on `q` and
//! restores the terminal; a `top` killed with -9 leaves a tap that turns
//! itself off when its lease runs out.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use xdpwall_dataplane::tap::{self, TapState};
use xdpwall_dataplane::{attach, stats, Instance};
use xdpwall_lab::{require_root, Lab, LabOptions, Netns, IFNAME_B};
use xdpwall_rules::compile::abi;

use crate::fixtures::{
    change_rules, config_dir, output, poll, send_udp, Running, Via, BIN, CMD_TIMEOUT, DROP_UDP,
    LAB_RULES, WAIT,
};

#[test]
fn top_needs_a_terminal_and_a_sane_interval() {
    // stdout is a pipe here: a usage error before anything is touched.
    let out = output(
        Command::new(BIN).args(["top", "--iface", "lo"]),
        CMD_TIMEOUT,
    );
    out.assert_code(2);
    assert!(
        out.stderr.contains("draws on a terminal"),
        "{}",
        out.describe()
    );
    assert!(out.stderr.contains("stats --json"), "{}", out.describe());
    let out = output(
        Command::new(BIN).args(["top", "--interval", "5"]),
        CMD_TIMEOUT,
    );
    out.assert_code(2);
    assert!(out.stderr.contains("--interval"), "{}", out.describe());
}

/// A minimal terminal: enough of the escape sequences ratatui's crossterm
/// backend writes (cursor moves, clears; styles ignored) to rebuild what
/// an 80×24 screen shows, since redraws only write the cells that changed.
struct Screen {
    cells: Vec<Vec<char>>,
    row: usize,
    col: usize,
}

impl Screen {
    const ROWS: usize = 24;
    const COLS: usize = 80;

    fn replay(stream: &str) -> Screen {
        let mut s = Screen {
            cells: vec![vec![' '; Self::COLS]; Self::ROWS],
            row: 0,
            col: 0,
        };
        let mut it = stream.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '\x1b' => {
                    if it.peek() != Some(&'[') {
                        it.next();
                        continue;
                    }
                    it.next();
                    let mut params = String::new();
                    let mut fin = ' ';
                    for p in it.by_ref() {
                        if p.is_ascii_alphabetic() || p == '@' || p == '~' {
                            fin = p;
                            break;
                        }
                        params.push(p);
                    }
                    match fin {
                        'H' => {
                            let mut n = params.split(';').map(|v| v.parse::<usize>().unwrap_or(1));
                            s.row = n.next().unwrap_or(1).saturating_sub(1);
                            s.col = n.next().unwrap_or(1).saturating_sub(1);
                        }
                        'J' if params == "2" => {
                            s.cells = vec![vec![' '; Self::COLS]; Self::ROWS];
                        }
                        _ => {}
                    }
                }
                '\r' => s.col = 0,
                '\n' => s.row += 1,
                c if !c.is_control() => {
                    if s.row < Self::ROWS && s.col < Self::COLS {
                        s.cells[s.row][s.col] = c;
                    }
                    s.col += 1;
                }
                _ => {}
            }
        }
        s
    }

    fn lines(&self) -> String {
        self.cells
            .iter()
            .map(|r| r.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `xdpwall top` in an 80×24 pseudo-terminal inside `ns`, via `via`.
struct TopSession {
    child: Child,
    stdin: Option<ChildStdin>,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl TopSession {
    fn start(ns: &Netns, via: Via) -> TopSession {
        let inner =
            format!("stty rows 24 cols 80; exec {BIN} top --iface {IFNAME_B} --interval 200");
        let mut cmd = match via {
            Via::IpNetnsExec => ns.command("script"),
            Via::Nsenter => ns.nsenter_command("script"),
        };
        cmd.args(["-qfec", &inner, "/dev/null"])
            .env("TERM", "xterm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn script (util-linux)");
        let stdin = child.stdin.take();
        let mut out = child.stdout.take().expect("stdout");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = out.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.extend_from_slice(&chunk[..n]);
                }
            }
        });
        TopSession {
            child,
            stdin,
            screen,
        }
    }

    /// Everything written to the terminal, escape sequences included.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().map(|s| s.clone()).unwrap_or_default())
            .into_owned()
    }

    /// What the 80×24 screen shows now.
    fn screen(&self) -> String {
        Screen::replay(&self.text()).lines()
    }

    /// Polls the screen until it shows `needle`.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.screen().contains(needle) {
            if let Ok(Some(s)) = self.child.try_wait() {
                panic!(
                    "top exited ({s}) before showing {needle:?}:\n{}",
                    self.text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "top did not show {needle:?} within {WAIT:?}:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn keys(&mut self, k: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(k.as_bytes()).expect("type into top");
        stdin.flush().expect("flush");
    }

    /// The pid of `top` itself (the child `script` started).
    fn top_pid(&self) -> i32 {
        let path = format!("/proc/{0}/task/{0}/children", self.child.id());
        poll(WAIT, "script to start top", || {
            std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())?
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| "no child yet".to_string())
        })
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "top did not exit:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TopSession {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // top first: a failing test must not leave it running.
            let path = format!("/proc/{0}/task/{0}/children", self.child.id());
            for pid in std::fs::read_to_string(path)
                .unwrap_or_default()
                .split_whitespace()
            {
                if let Ok(pid) = pid.parse::<i32>() {
                    // SAFETY: kill(2) on the top this test started.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether process `pid` has exited (gone, or a zombie nobody reaped).
fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// The instance on b, opened from inside the namespace.
fn instance(lab: &Lab) -> Instance {
    lab.b()
        .ns()
        .run(|| attach::find(IFNAME_B))
        .expect("enter namespace b")
        .expect("find the instance")
}

fn top_case(via: Via) {
    let lab = Lab::new(LabOptions::default().ipv6(false)).expect("lab");
    let (_d, cfg) = config_dir("top", LAB_RULES);
    let mut run = Running::start(lab.b().ns(), &cfg, &[]);
    let old = instance(&lab);
    let mut top = TopSession::start(lab.b().ns(), via);
    top.wait_for("xdpwall top");
    top.wait_for("udp-high-drop");
    top.wait_for(" · native · prog ");
    // `run` counts XDP errors, and top knows it.
    top.wait_for("counted   yes, by run");
    // The tap is on, for dropped packets only, with a lease.
    poll(WAIT, "top to take the tap", || match tap::state(&old) {
        Ok(TapState::Held(_)) => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let t = old.tap().expect("tap");
    assert_eq!(t.flags & abi::TAP_DROPS, abi::TAP_DROPS);
    // No rule logs, yet the source of the drops shows up.
    assert!(send_udp(&lab, DROP_UDP, 20) > 0);
    top.wait_for(&lab.a().ipv4().to_string());
    // A reload (of changed rules: a new program): top follows the new
    // program, taps it, releases the old one's tap, and keeps the sources
    // seen so far.
    change_rules(&cfg);
    run.signal(libc::SIGHUP);
    run.wait_stderr("xdpwall: reloaded", WAIT);
    let inst = instance(&lab);
    assert_ne!(inst.prog_id, old.prog_id);
    top.wait_for(&format!("prog {} ", inst.prog_id));
    poll(WAIT, "top to tap the new program", || {
        match tap::state(&inst) {
            Ok(TapState::Held(_)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(
        old.tap().expect("tap").enabled,
        0,
        "old program's tap left on"
    );
    assert!(top.screen().contains(&lab.a().ipv4().to_string()));
    let shown = top.screen();
    let row = shown
        .lines()
        .find(|l| l.contains(&lab.a().ipv4().to_string()))
        .expect("source row");
    assert!(
        row.contains("udp-high-drop") && row.contains("100%"),
        "{shown}"
    );
    // The filter and the sort keys act on the live screen.
    top.keys("/dns\r");
    top.wait_for("filter \"dns\"");
    assert!(!top.screen().contains("ssh-drop"), "{}", top.screen());
    top.keys("s");
    top.wait_for("sort bytes/s");
    top.keys("q");
    let status = top.wait_exit();
    assert!(status.success(), "top failed ({status}):\n{}", top.text());
    // The tap is off and the terminal is back: main screen, cursor shown.
    assert_eq!(inst.tap().expect("tap").enabled, 0, "tap left on");
    let out = top.text();
    let tail = &out[out
        .rfind("\x1b[?1049h")
        .expect("entered the alternate screen")..];
    assert!(tail.contains("\x1b[?1049l"), "alternate screen not left");
    assert!(tail.contains("\x1b[?25h"), "cursor not shown again");
}

#[test]
fn top_shows_drop_sources_and_turns_the_tap_off_via_ip_netns_exec() {
    if !require_root("top_shows_drop_sources_and_turns_the_tap_off_via_ip_netns_exec") {
        return;
    }
    top_case(Via::IpNetnsExec);
}

#[test]
fn top_works_under_nsenter_too() {
    if !require_root("top_works_under_nsenter_too") {
        return;
    }
    top_case(Via::Nsenter);
}

#[test]
fn a_killed_top_leaves_a_tap_that_expires_by_itself() {
    if !require_root("a_killed_top_leaves_a_tap_that_expires_by_itself") {
        return;
    }
    let lab = Lab::new(LabOptions::default().ipv6(false)).expect("lab");
    let (_d, cfg) = config_dir("top-kill", LAB_RULES);
    let _run = Running::start(lab.b().ns(), &cfg, &[]);
    let inst = instance(&lab);
    let mut top = TopSession::start(lab.b().ns(), Via::IpNetnsExec);
    top.wait_for("udp-high-drop");
    poll(WAIT, "top to take the tap", || match tap::state(&inst) {
        Ok(TapState::Held(_)) => Ok(()),
        other => Err(format!("{other:?}")),
    });
    // SAFETY: kill(2) on the top process this test started (via script).
    assert_eq!(unsafe { libc::kill(top.top_pid(), libc::SIGKILL) }, 0);
    top.wait_exit();
    // Nobody turned it off: it is still enabled, but its lease is bounded...
    let t = inst.tap().expect("tap");
    assert_eq!(t.enabled, 1, "a killed top cannot have cleaned up");
    let lease = u64::try_from(tap::LEASE.as_nanos()).expect("fits");
    assert!(t.expires_ns <= tap::monotonic_ns() + lease);
    // ... and runs out by itself; after that drops are no longer tapped.
    poll(
        tap::LEASE + WAIT,
        "the dead top's lease to run out",
        || match tap::state(&inst) {
            Ok(TapState::Free) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let before = stats::events(&inst).expect("events").tap_produced;
    let sent = send_udp(&lab, DROP_UDP, 10);
    assert!(sent > 0);
    crate::fixtures::wait_rule_packets(lab.b().ns(), Via::IpNetnsExec, "udp-high-drop", sent);
    assert_eq!(
        stats::events(&inst).expect("events").tap_produced,
        before,
        "an expired tap still costs the data plane"
    );
    // A new capture needs no --force to take the expired tap.
    assert_eq!(tap::state(&inst).expect("state"), TapState::Free);
}

#[test]
fn top_exits_and_frees_the_tap_when_its_terminal_goes_away() {
    if !require_root("top_exits_and_frees_the_tap_when_its_terminal_goes_away") {
        return;
    }
    let lab = Lab::new(LabOptions::default().ipv6(false)).expect("lab");
    let (_d, cfg) = config_dir("top-hup", LAB_RULES);
    let _run = Running::start(lab.b().ns(), &cfg, &[]);
    let inst = instance(&lab);
    let mut top = TopSession::start(lab.b().ns(), Via::IpNetnsExec);
    top.wait_for("udp-high-drop");
    poll(WAIT, "top to take the tap", || match tap::state(&inst) {
        Ok(TapState::Held(_)) => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let pid = top.top_pid();
    // Like a closed ssh session: the terminal's other end disappears.
    top.child.kill().expect("kill script");
    top.wait_exit();
    poll(WAIT, "top to exit after the hang-up", || {
        if exited(pid) {
            Ok(())
        } else {
            Err(format!("top (pid {pid}) still runs"))
        }
    });
    // It turned the tap off itself (an expired lease would still say enabled).
    assert_eq!(inst.tap().expect("tap").enabled, 0, "tap not released");
}

/// One tapper at a time: while `capture` holds the tap, top says so and
/// goes on without sources (and capture is not disturbed); when capture
/// ends, top takes the tap within a second or so and shows sources again.
/// A second `capture` is then refused while top's lease is live.
#[test]
fn top_waits_for_a_tap_held_by_capture() {
    if !require_root("top_waits_for_a_tap_held_by_capture") {
        return;
    }
    let lab = Lab::new(LabOptions::default().ipv6(false)).expect("lab");
    let (_d, cfg) = config_dir("top-busy", LAB_RULES);
    let _run = Running::start(lab.b().ns(), &cfg, &[]);
    let mut cmd = lab.b().ns().command(BIN);
    cmd.args(["capture", "--iface", IFNAME_B, "-c", "1000000"]);
    let mut cap = Running::spawn_command(cmd);
    cap.wait_stderr("tapping the xdpwall program", WAIT);
    let mut top = TopSession::start(lab.b().ns(), Via::IpNetnsExec);
    top.wait_for("tap busy");
    top.wait_for("(tap busy)");
    cap.signal(libc::SIGINT);
    cap.wait_exit(WAIT).assert_code(0);
    top.wait_for("(tap on)");
    assert!(send_udp(&lab, DROP_UDP, 5) > 0);
    top.wait_for(&lab.a().ipv4().to_string());
    let out = crate::fixtures::xdpwall_in(
        lab.b().ns(),
        Via::IpNetnsExec,
        &["capture", "--iface", IFNAME_B, "-c", "1"],
    );
    out.assert_code(1);
    assert!(out.stderr.contains("--force"), "{}", out.describe());
    top.keys("q");
    assert!(top.wait_exit().success(), "{}", top.screen());
}
