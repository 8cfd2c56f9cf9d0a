//! Helpers shared by the CLI tests: temp config dirs, running the binary with
//! a deadline, a guard around a foreground `xdpwall run`, polling, and
//! `stats --json` access.
//!
//! Synchronisation is always "poll a condition until a deadline", never a
//! bare sleep.

#![allow(dead_code)]

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use xdpwall_lab::{Lab, Netns, IFNAME_B};

/// The binary under test (built once by cargo).
pub const BIN: &str = env!("CARGO_BIN_EXE_xdpwall");

/// Default deadline for a short command (check, stats, detach, replay).
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline for `run` to attach, for a counter to reach a value, etc.
/// Generous because start-up and reloads are the kernel verifier's work
/// (~0.2 s alone here; ~0.7 s before the parser's ways rejoined), and the
/// suite verifies several programs at once on two CPUs: starts took up to
/// 6 s under its load here then, and over 10 s on a busier CI machine.
/// Waits end as soon as the condition holds.
pub const WAIT: Duration = Duration::from_secs(30);

/// UDP port the lab rule set passes (`dns`).
pub const PASS_UDP: u16 = 53;
/// UDP port the lab rule set drops (`udp-high-drop`).
pub const DROP_UDP: u16 = 15_000;
/// TCP port the lab rule set drops (`ssh-drop`).
pub const DROP_TCP: u16 = 22;

/// The rule set used by the lab tests (runs on host b, 198.18.0.2).
pub const LAB_RULES: &str = r#"# lab rules for the CLI tests
[xdp]
default = "pass"
malformed = "pass"

[[rule]]
name = "count-icmp"
proto = "icmp"
action = "count"

[[rule]]
name = "ssh-drop"
proto = "tcp"
dport = 22
action = "drop"

[[rule]]
name = "dns"
proto = "udp"
dport = 53
action = "pass"

[[rule]]
name = "udp-high-drop"
proto = "udp"
dport = "10000-20000"
action = "drop"
"#;

// ---------------------------------------------------------------- temp dirs

static DIR_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A private temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/xdpwall-cli-<pid>-<n>-<tag>`.
    pub fn new(tag: &str) -> TempDir {
        let n = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("xdpwall-cli-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `name` (relative) with `contents`; returns its absolute path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path.join(name);
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A temp dir holding `rules.toml` = `contents`; returns (dir, config path).
pub fn config_dir(tag: &str, contents: &str) -> (TempDir, PathBuf) {
    let d = TempDir::new(tag);
    let p = d.write("rules.toml", contents);
    (d, p)
}

// ------------------------------------------------------- process plumbing

/// Output of a finished command.
#[derive(Debug)]
pub struct Out {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
    /// Process id it ran as.
    pub pid: u32,
}

impl Out {
    /// The exit code (None when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// All of it, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// Panics unless the command exited 0.
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.status.success(),
            "expected success\n{}",
            self.describe()
        );
        self
    }

    /// Panics unless the command exited with `code`.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            Some(code),
            "expected exit {code}\n{}",
            self.describe()
        );
        self
    }
}

type Buf = Arc<Mutex<Vec<u8>>>;

/// Background readers for a child's stdout and stderr.
struct Pipes {
    stdout: Buf,
    stderr: Buf,
    readers: Vec<JoinHandle<()>>,
}

fn reader(mut src: impl Read + Send + 'static, dst: Buf) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match src.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => dst
                    .lock()
                    .map(|mut b| b.extend_from_slice(&chunk[..n]))
                    .unwrap_or(()),
            }
        }
    })
}

impl Pipes {
    fn attach(child: &mut Child) -> Pipes {
        let stdout: Buf = Arc::default();
        let stderr: Buf = Arc::default();
        let mut readers = Vec::new();
        if let Some(o) = child.stdout.take() {
            readers.push(reader(o, stdout.clone()));
        }
        if let Some(e) = child.stderr.take() {
            readers.push(reader(e, stderr.clone()));
        }
        Pipes {
            stdout,
            stderr,
            readers,
        }
    }

    fn text(b: &Buf) -> String {
        String::from_utf8_lossy(&b.lock().map(|b| b.clone()).unwrap_or_default()).into_owned()
    }

    fn join(&mut self) {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

fn spawn_piped(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"))
}

fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for child {}: {e}", child.id()),
        }
    }
}

/// Runs `cmd` to completion (killed and failing the test after `timeout`).
pub fn output(cmd: &mut Command, timeout: Duration) -> Out {
    let mut child = spawn_piped(cmd);
    let pid = child.id();
    let mut pipes = Pipes::attach(&mut child);
    let status = match wait_deadline(&mut child, timeout) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            pipes.join();
            panic!(
                "{cmd:?} did not finish within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                Pipes::text(&pipes.stdout),
                Pipes::text(&pipes.stderr)
            );
        }
    };
    pipes.join();
    Out {
        status,
        stdout: Pipes::text(&pipes.stdout),
        stderr: Pipes::text(&pipes.stderr),
        pid,
    }
}

/// `xdpwall ARGS…` in the test's own namespaces.
pub fn xdpwall(args: &[&str]) -> Out {
    output(Command::new(BIN).args(args), CMD_TIMEOUT)
}

/// How a command enters a lab namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `ip netns exec NAME …` (new mount namespace, fresh /sys).
    IpNetnsExec,
    /// `nsenter --net=/run/netns/NAME …` (network namespace only).
    Nsenter,
}

/// `xdpwall ARGS…` inside `ns`.
pub fn xdpwall_in(ns: &Netns, via: Via, args: &[&str]) -> Out {
    let mut cmd = match via {
        Via::IpNetnsExec => ns.command(BIN),
        Via::Nsenter => ns.nsenter_command(BIN),
    };
    cmd.args(args);
    output(&mut cmd, CMD_TIMEOUT)
}

// ------------------------------------------------------------------ polling

/// Calls `f` until it returns Ok or `timeout` passes; then fails the test
/// with `what` and the last error.
pub fn poll<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(25)),
        }
    }
}

// ------------------------------------------------------------- run guard

/// A foreground `xdpwall run` started inside a namespace with
/// `ip netns exec`. Dropping it SIGTERMs the process, SIGKILLs it if it
/// does not exit in time, and always reaps it.
pub struct Running {
    child: Child,
    pipes: Pipes,
    exited: Option<ExitStatus>,
    label: String,
}

impl Running {
    /// `ip netns exec NS xdpwall run CONFIG --iface xwb EXTRA…`.
    pub fn spawn(ns: &Netns, config: &Path, extra: &[&str]) -> Running {
        let mut cmd = ns.command(BIN);
        cmd.arg("run")
            .arg(config)
            .args(["--iface", IFNAME_B])
            .args(extra);
        let label = format!("{cmd:?}");
        let mut child = spawn_piped(&mut cmd);
        let pipes = Pipes::attach(&mut child);
        Running {
            child,
            pipes,
            exited: None,
            label,
        }
    }

    /// Spawns any xdpwall command (e.g. `capture`) under the same guard.
    pub fn spawn_command(mut cmd: Command) -> Running {
        let label = format!("{cmd:?}");
        let mut child = spawn_piped(&mut cmd);
        let pipes = Pipes::attach(&mut child);
        Running {
            child,
            pipes,
            exited: None,
            label,
        }
    }

    /// Spawns and waits for the "attached to" line.
    pub fn start(ns: &Netns, config: &Path, extra: &[&str]) -> Running {
        let mut r = Running::spawn(ns, config, extra);
        r.wait_stderr("xdpwall: attached to", WAIT);
        r
    }

    /// Process id (`ip netns exec` execs, so this is xdpwall itself).
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits i32")
    }

    /// Standard error so far.
    pub fn stderr(&self) -> String {
        Pipes::text(&self.pipes.stderr)
    }

    /// Standard output so far.
    pub fn stdout(&self) -> String {
        Pipes::text(&self.pipes.stdout)
    }

    fn describe(&self) -> String {
        format!(
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.label,
            self.stdout(),
            self.stderr()
        )
    }

    /// Exit status, if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Polls stderr until it contains `needle`, failing early if the
    /// process exits first. Returns the stderr.
    pub fn wait_stderr(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let err = self.stderr();
            if err.contains(needle) {
                return err;
            }
            if let Some(s) = self.try_status() {
                self.pipes.join();
                panic!(
                    "run exited ({s}) before printing {needle:?}\n{}",
                    self.describe()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "run did not print {needle:?} within {timeout:?}\n{}",
                    self.describe()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Number of times `needle` occurs in stderr.
    pub fn stderr_count(&self, needle: &str) -> usize {
        self.stderr().matches(needle).count()
    }

    /// Polls until stderr has at least `n` occurrences of `needle`.
    pub fn wait_stderr_count(&mut self, needle: &str, n: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr_count(needle) >= n {
                return self.stderr();
            }
            if let Some(s) = self.try_status() {
                self.pipes.join();
                panic!(
                    "run exited ({s}) before printing {needle:?} {n} times\n{}",
                    self.describe()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "run did not print {needle:?} {n} times within {timeout:?}\n{}",
                    self.describe()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid (not yet reaped).
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(
            rc,
            0,
            "kill({}, {sig}): {}",
            self.pid(),
            std::io::Error::last_os_error()
        );
    }

    /// Waits for the exit (failing the test after `timeout`) and returns
    /// everything it printed.
    pub fn wait_exit(&mut self, timeout: Duration) -> Out {
        let status = match self.exited {
            Some(s) => s,
            None => match wait_deadline(&mut self.child, timeout) {
                Some(s) => s,
                None => panic!("run did not exit within {timeout:?}\n{}", self.describe()),
            },
        };
        self.exited = Some(status);
        self.pipes.join();
        Out {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
            pid: self.child.id(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(self.pid(), libc::SIGTERM) };
            if wait_deadline(&mut self.child, Duration::from_secs(5)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        self.pipes.join();
    }
}

// ------------------------------------------------------------------ stats

/// `stats --json` inside `ns`, parsed; Err with the output on failure.
pub fn stats_json(ns: &Netns, via: Via) -> Result<Value, String> {
    let out = xdpwall_in(ns, via, &["stats", "--json"]);
    if !out.status.success() {
        return Err(out.describe());
    }
    serde_json::from_str(out.stdout.trim())
        .map_err(|e| format!("stats --json is not JSON ({e}):\n{}", out.stdout))
}

/// The `rules[]` entry named `name`.
pub fn rule<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["rules"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no rule {name:?} in {stats}"))
}

/// Packets counted by rule `name`.
pub fn rule_packets(stats: &Value, name: &str) -> u64 {
    rule(stats, name)["packets"]
        .as_u64()
        .unwrap_or_else(|| panic!("rule {name}: packets not a number in {stats}"))
}

/// Polls `stats --json` in `ns` until rule `name` counted at least `n`
/// packets; returns that snapshot.
pub fn wait_rule_packets(ns: &Netns, via: Via, name: &str, n: u64) -> Value {
    poll(WAIT, &format!("rule {name} to count {n} packets"), || {
        let s = stats_json(ns, via)?;
        let got = rule_packets(&s, name);
        if got >= n {
            Ok(s)
        } else {
            Err(format!("{name} = {got}: {s}"))
        }
    })
}

/// Whether `ip -n NS link show xwb` shows an XDP program.
pub fn link_has_xdp(ns: &Netns) -> bool {
    let show = ns.ip(&["link", "show", IFNAME_B]).expect("ip link show");
    show.split_whitespace()
        .any(|w| w.starts_with("xdp") || w.starts_with("prog/xdp"))
}

/// `ip -n NS link show xwb`.
pub fn link_show(ns: &Netns) -> String {
    ns.ip(&["link", "show", IFNAME_B]).expect("ip link show")
}

// ---------------------------------------------------------------- traffic

/// Address of host b.
pub fn b_addr(lab: &Lab, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(lab.b().ipv4()), port)
}

/// Sends `n` UDP datagrams of 32 bytes from a to b:`port`; returns how many
/// the kernel accepted.
pub fn send_udp(lab: &Lab, port: u16, n: usize) -> u64 {
    let sent = xdpwall_lab::traffic::udp_send(lab.a().ns(), None, b_addr(lab, port), n, 32)
        .expect("udp_send");
    sent as u64
}

/// A counting UDP listener on b:`port`.
pub fn listen_udp(lab: &Lab, port: u16) -> xdpwall_lab::traffic::UdpCounter {
    xdpwall_lab::traffic::udp_listen(lab.b().ns(), b_addr(lab, port)).expect("udp_listen")
}

/// UDP port no rule matches (the default, `pass`, applies): a marker that
/// proves the datagrams sent before it went through XDP.
pub const MARKER_UDP: u16 = 9;

/// Sends `n` datagrams to b:`port` and then one to b:[`MARKER_UDP`], all
/// from one socket on one thread (so they queue in order), and returns how
/// many went to `port`.
fn send_then_marker(lab: &Lab, port: u16, n: usize) -> u64 {
    let (dst, marker) = (b_addr(lab, port), b_addr(lab, MARKER_UDP));
    lab.a()
        .ns()
        .run(|| {
            let sock = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind UDP");
            let mut sent = 0;
            for _ in 0..n {
                if sock.send_to(&[0x5a; 32], dst).is_ok() {
                    sent += 1;
                }
            }
            sock.send_to(b"marker", marker).expect("send marker");
            sent
        })
        .expect("entering namespace a")
}

/// Proves UDP to `port` is dropped while xdpwall runs on b: sends `n`
/// datagrams, then a marker to a passed port; once the marker arrived,
/// none of the `n` may have reached a listener on `port`. Needs no `stats`.
pub fn assert_udp_dropped(lab: &Lab, port: u16, n: usize) {
    let l = listen_udp(lab, port);
    let marker = listen_udp(lab, MARKER_UDP);
    let sent = send_then_marker(lab, port, n);
    assert!(sent > 0, "nothing sent");
    assert!(
        marker.wait_for(1, WAIT),
        "the marker datagram to port {MARKER_UDP} did not arrive"
    );
    assert_eq!(
        l.stop(),
        0,
        "UDP to port {port} must be dropped, but arrived"
    );
}

/// Proves UDP to `port` arrives (nothing filters it).
pub fn assert_udp_arrives(lab: &Lab, port: u16, n: usize) {
    let l = listen_udp(lab, port);
    let sent = send_udp(lab, port, n);
    assert!(sent > 0, "nothing sent");
    assert!(
        l.wait_for(sent, WAIT),
        "only {}/{sent} datagrams to port {port} arrived",
        l.count()
    );
}

/// The `program id N` printed by `run` after `marker` (e.g. "attached to").
pub fn prog_id_after(text: &str, marker: &str) -> Option<u32> {
    let rest = &text[text.rfind(marker)?..];
    let rest = &rest[rest.find("program id ")? + "program id ".len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// True when `CI=true` (privileged prerequisites must not be skipped).
pub fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// The row of `name` in a printed counters table (`run`'s final counters,
/// `stats`): (action, packets).
pub fn table_row(table: &str, name: &str) -> Option<(String, u64)> {
    table.lines().find_map(|l| {
        let cells: Vec<&str> = l.split_whitespace().collect();
        (cells.first() == Some(&name) && cells.len() >= 4)
            .then(|| (cells[1].to_string(), cells[2].parse().unwrap_or(u64::MAX)))
    })
}

/// Rule names of a printed counters table, in order.
pub fn table_rules(table: &str) -> Vec<String> {
    table
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("RULE"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .take_while(|n| *n != "(default)")
        .map(str::to_string)
        .collect()
}

/// Appends a rule to the config at `cfg` (one that matches nothing the
/// tests send), so its next reload needs a new program: a reload whose
/// config differs only in sets, or not at all, is applied in place.
pub fn change_rules(cfg: &Path) {
    let text = std::fs::read_to_string(cfg).expect("read config");
    let n = text.matches("[[rule]]").count();
    let extra = format!("\n[[rule]]\nname = \"extra-{n}\"\nproto = \"sctp\"\naction = \"drop\"\n");
    std::fs::write(cfg, text + &extra).expect("write config");
}
