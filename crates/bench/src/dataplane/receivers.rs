//! The receivers the dataplane benchmark compares, each set up on the
//! receiving veth and torn down again, and each with its own drop counter
//! (read to prove the frames were dropped by the filter's rule).

use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use xdpwall_dataplane::{attach, stats, Instance};
use xdpwall_gen::Receiver;
use xdpwall_lab::Host;
use xdpwall_rules::Mode;

/// The source address and UDP port every rule below matches (the synthetic
/// rule sets' last rule, `target`).
pub const FLOW_SRC: [u8; 4] = xdpwall_rules::synth::TARGET_SRC;
/// Destination port of the matched flow.
pub const FLOW_DPORT: u16 = xdpwall_rules::synth::TARGET_DPORT;

/// What runs on the receiving veth for one row.
pub enum Kind {
    /// A counting `XDP_DROP` program: the ceiling.
    Bare,
    /// xdpwall with a loaded rule set, and whether its default action
    /// drops (then the default's counter also counts drops).
    Xdpwall(Box<Instance>, bool),
    /// `xdp-filter load -f FEATURES` plus `xdp-filter port 5353 -p udp`.
    XdpFilter(&'static str),
    /// An nftables netdev ingress chain dropping the flow (plus XDP_PASS).
    Nft,
    /// iptables (the given binary) raw PREROUTING dropping the flow (plus XDP_PASS).
    Iptables(&'static str),
    /// No filter: XDP_PASS, the stack handles (and drops) the frames.
    NoFilter,
}

/// The tool a kind needs, if any, and the package it comes from.
pub fn needs(kind: &Kind) -> Option<(&'static str, &'static str)> {
    match kind {
        Kind::XdpFilter(_) => Some(("xdp-filter", "xdp-tools")),
        Kind::Nft => Some(("nft", "nftables")),
        Kind::Iptables(bin) => Some((bin, "iptables")),
        _ => None,
    }
}

/// Whether `tool` can be run (found in PATH, or in /usr/sbin, /sbin).
pub fn installed(tool: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .any(|d| std::path::Path::new(d).join(tool).is_file());
    found
}

/// Something set up on the receiver that must be torn down.
pub struct Active<'k> {
    kind: &'k Kind,
    /// The XDP program this benchmark attached itself (Bare, and the pass
    /// program under nft/iptables/no filter).
    own: Option<Receiver>,
}

fn run(cmd: Command, input: Option<&str>) -> Result<String> {
    run_inner(cmd, input, true)
}

/// Runs a command and returns its stdout whatever its exit status
/// (`xdp-filter status` exits non-zero after printing when some of its
/// maps are absent, as with `-f udp`); the caller checks the text.
fn run_lenient(cmd: Command) -> Result<String> {
    run_inner(cmd, None, false)
}

fn run_inner(mut cmd: Command, input: Option<&str>, strict: bool) -> Result<String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if strict && !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn nft_ruleset(ifname: &str) -> String {
    let s = FLOW_SRC;
    format!(
        "table netdev xwbench {{\n  chain ingress {{\n    type filter hook ingress device \"{ifname}\" priority -500; policy accept;\n    \
         ip saddr {}.{}.{}.{} udp dport {FLOW_DPORT} counter drop\n  }}\n}}\n",
        s[0], s[1], s[2], s[3]
    )
}

fn ipt_rule(op: &str) -> Vec<String> {
    let s = FLOW_SRC;
    [
        "-t",
        "raw",
        op,
        "PREROUTING",
        "-s",
        &format!("{}.{}.{}.{}", s[0], s[1], s[2], s[3]),
    ]
    .into_iter()
    .map(String::from)
    .chain(
        [
            "-p",
            "udp",
            "--dport",
            &FLOW_DPORT.to_string(),
            "-j",
            "DROP",
        ]
        .map(String::from),
    )
    .collect()
}

/// Attaches a counting pass/drop program natively to the host's veth.
fn attach_own(host: &Host, rx: Receiver) -> Result<Receiver> {
    let idx = host.ifindex();
    host.ns().run(|| rx.attach(idx))??;
    Ok(rx)
}

/// bpffs at /sys/fs/bpf, which libxdp (xdp-filter) pins its state in.
fn ensure_bpffs() -> Result<()> {
    let mounted = std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf") && l.contains(" bpf "));
    if !mounted {
        eprintln!("mounting bpffs at /sys/fs/bpf (xdp-filter keeps its state there; left mounted)");
        run(
            {
                let mut c = Command::new("mount");
                c.args(["-t", "bpf", "bpf", "/sys/fs/bpf"]);
                c
            },
            None,
        )?;
    }
    Ok(())
}

impl Kind {
    /// Sets the receiver up on `host` (the receiving end of the lab).
    ///
    /// # Errors
    /// Loading, attaching or a peer's command fails.
    pub fn set_up<'k>(&'k self, host: &Host) -> Result<Active<'k>> {
        let ifname = host.ifname().to_string();
        let own = match self {
            Kind::Bare => Some(attach_own(host, Receiver::drop_all()?)?),
            Kind::Xdpwall(inst, _) => {
                host.ns()
                    .run(|| attach::attach(inst, &ifname, Mode::Native, false))??;
                None
            }
            Kind::XdpFilter(features) => {
                ensure_bpffs()?;
                // nsenter, not `ip netns exec`: the latter hides /sys/fs/bpf.
                let mut c = host.ns().nsenter_command("xdp-filter");
                c.args(["load", "-m", "native", "-f", features, &ifname]);
                run(c, None)?;
                let mut c = host.ns().nsenter_command("xdp-filter");
                c.args(["port", &FLOW_DPORT.to_string(), "-m", "dst", "-p", "udp"]);
                run(c, None)?;
                None
            }
            Kind::Nft => {
                let rx = attach_own(host, Receiver::pass_all()?)?;
                let mut c = host.ns().command("nft");
                c.args(["-f", "-"]);
                run(c, Some(&nft_ruleset(&ifname)))?;
                Some(rx)
            }
            Kind::Iptables(bin) => {
                let rx = attach_own(host, Receiver::pass_all()?)?;
                let mut c = host.ns().command(bin);
                c.args(ipt_rule("-A"));
                run(c, None)?;
                Some(rx)
            }
            Kind::NoFilter => Some(attach_own(host, Receiver::pass_all()?)?),
        };
        Ok(Active { kind: self, own })
    }
}

impl Active<'_> {
    /// Frames the filter itself has dropped so far (its own counter), or
    /// `None` when it keeps none (no filter).
    ///
    /// # Errors
    /// The counter cannot be read.
    pub fn dropped(&self, host: &Host) -> Result<Option<u64>> {
        Ok(match self.kind {
            Kind::Bare => Some(
                self.own
                    .as_ref()
                    .map_or(Ok(0), |r| r.count().map(|c| c.packets))?,
            ),
            Kind::Xdpwall(inst, default_drops) => {
                // Not st.default_action: that comes from what `run`
                // records at attach, which this benchmark does not do.
                let st = stats::read(inst)?;
                let by_default = if *default_drops {
                    st.default.packets
                } else {
                    0
                };
                Some(
                    st.rules
                        .iter()
                        .filter(|r| r.action == "drop")
                        .map(|r| r.counter.packets)
                        .sum::<u64>()
                        + by_default,
                )
            }
            Kind::XdpFilter(_) => {
                let mut c = host.ns().nsenter_command("xdp-filter");
                c.arg("status");
                let out = run_lenient(c)?;
                Some(
                    out.lines()
                        .find_map(|l| {
                            let mut w = l.split_whitespace();
                            (w.next() == Some("XDP_DROP")).then(|| w.next()?.parse().ok())?
                        })
                        .ok_or_else(|| {
                            anyhow!("no XDP_DROP line in `xdp-filter status`:\n{out}")
                        })?,
                )
            }
            Kind::Nft => {
                let mut c = host.ns().command("nft");
                c.args(["list", "table", "netdev", "xwbench"]);
                let out = run(c, None)?;
                Some(
                    out.split_whitespace()
                        .skip_while(|w| *w != "packets")
                        .nth(1)
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| anyhow!("no counter in the nft table:\n{out}"))?,
                )
            }
            Kind::Iptables(bin) => {
                let mut c = host.ns().command(bin);
                c.args(["-t", "raw", "-L", "PREROUTING", "-v", "-x", "-n"]);
                let out = run(c, None)?;
                Some(
                    out.lines()
                        .find(|l| l.contains("DROP"))
                        .and_then(|l| l.split_whitespace().next()?.parse().ok())
                        .ok_or_else(|| anyhow!("no DROP rule in `{bin} -t raw -L`:\n{out}"))?,
                )
            }
            Kind::NoFilter => None,
        })
    }

    /// Removes what [`Kind::set_up`] installed.
    ///
    /// # Errors
    /// Detaching or a peer's command fails.
    pub fn tear_down(self, host: &Host) -> Result<()> {
        let ifname = host.ifname().to_string();
        let idx = host.ifindex();
        match self.kind {
            Kind::Xdpwall(..) => {
                host.ns().run(|| attach::detach(&ifname, false))??;
            }
            Kind::XdpFilter(_) => {
                let mut c = host.ns().nsenter_command("xdp-filter");
                c.args(["unload", &ifname]);
                run(c, None)?;
            }
            Kind::Nft => {
                let mut c = host.ns().command("nft");
                c.args(["delete", "table", "netdev", "xwbench"]);
                run(c, None)?;
            }
            Kind::Iptables(bin) => {
                let mut c = host.ns().command(bin);
                c.args(ipt_rule("-D"));
                run(c, None)?;
            }
            Kind::Bare | Kind::NoFilter => {}
        }
        if let Some(rx) = &self.own {
            host.ns().run(|| rx.detach(idx))??;
        }
        Ok(())
    }
}
