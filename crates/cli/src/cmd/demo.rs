//! `xdpwall demo`: a throwaway lab with real traffic and live counters.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use xdpwall_dataplane::attach;
use xdpwall_dataplane::load::{load, LoadOptions};
use xdpwall_dataplane::stats::{self, Stats};
use xdpwall_lab::traffic::{self, tcp_connect_attempts, udp_send};
use xdpwall_lab::{is_root, Lab, LabOptions};
use xdpwall_rules::compile::compile;
use xdpwall_rules::{parse_config, Mode};

use crate::output::{stats_table, EventCounts, Header};

const DEMO_RULES: &str = include_str!("../../../../examples/demo.toml");
const BLOCKED_SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 66);

/// Runs the demo.
pub fn demo(rounds: u32) -> Result<()> {
    if !is_root() {
        return Err(crate::exit::usage(
            "xdpwall demo needs root (it creates network namespaces and attaches XDP): run it with sudo",
        ));
    }
    let cfg = parse_config(DEMO_RULES, Path::new("examples/demo.toml"))
        .map_err(|e| anyhow::anyhow!("built-in demo rules: {e}"))?;
    let compiled = compile(&cfg)?;

    println!("== building a throwaway lab: two network namespaces joined by a veth pair");
    let lab = Lab::new(LabOptions::default()).context("cannot build the lab")?;
    let (a, b) = (lab.a(), lab.b());
    a.ns().ip(&[
        "addr",
        "add",
        &format!("{BLOCKED_SRC}/24"),
        "dev",
        a.ifname(),
    ])?;
    println!(
        "   {} ({}): {} {}, {BLOCKED_SRC} (blocklisted)  <-veth->  {} ({}): {} {}",
        a.ns().name(),
        a.ifname(),
        a.ipv4(),
        a.ipv6(),
        b.ns().name(),
        b.ifname(),
        b.ipv4(),
        b.ipv6()
    );

    let iface = b.ifname().to_string();
    let (inst, attached) = b.ns().run(|| -> Result<_> {
        let inst = load(&compiled, LoadOptions::default())?;
        let attached = attach::attach(&inst, &iface, Mode::Auto, false)?;
        Ok((inst, attached))
    })??;
    if let Some(w) = &attached.warning {
        println!("   warning: {w}");
    }
    println!(
        "== loaded {} rules from examples/demo.toml; attached to {} in {} mode (program id {})",
        compiled.rules.len(),
        iface,
        attached.mode.name(),
        inst.prog_id
    );
    print!("{}", indent(&xdpwall_rules::format_rule_table(&cfg)));

    let web = SocketAddr::new(IpAddr::V4(b.ipv4()), 80);
    let dns = SocketAddr::new(IpAddr::V4(b.ipv4()), 53);
    let web_rx = traffic::tcp_listen(b.ns(), web)?;
    let dns_rx = traffic::udp_listen(b.ns(), dns)?;
    let h = Header {
        iface: &iface,
        mode: attached.mode.name(),
        transport: "ringbuf",
        events: EventCounts::default(),
        xdp_errors: None,
        xdp_counting: None,
    };

    let mut prev: Option<Stats> = None;
    for round in 1..=rounds {
        println!(
            "\n== round {round}/{rounds}: traffic from {} to {}",
            a.ns().name(),
            b.ns().name()
        );
        let v4 = IpAddr::V4(b.ipv4());
        let v6 = IpAddr::V6(b.ipv6());
        let p4 = traffic::ping(a.ns(), v4, 3, Duration::from_millis(300))?;
        println!(
            "   ping {v4}: {}/{} replies (count-icmp counts, default passes)",
            p4.replies, p4.sent
        );
        let p6 = traffic::ping(a.ns(), v6, 3, Duration::from_millis(300))?;
        println!(
            "   ping {v6}: {}/{} replies (v6-no-ping drops echo requests)",
            p6.replies, p6.sent
        );
        let ssh = tcp_connect_attempts(
            a.ns(),
            SocketAddr::new(v4, 22),
            2,
            Duration::from_millis(300),
        )?;
        println!(
            "   tcp/22: {} connected, {} timed out (ssh-drop)",
            ssh.connected, ssh.timed_out
        );
        let w = tcp_connect_attempts(a.ns(), web, 4, Duration::from_millis(500))?;
        println!("   tcp/80: {} connected (web passes)", w.connected);
        let before = dns_rx.count();
        let sent = udp_send(a.ns(), None, dns, 20, 64)?;
        dns_rx.wait_for(before + sent as u64, Duration::from_secs(1));
        println!(
            "   udp/53: {sent} sent, {} received (dns passes)",
            dns_rx.count() - before
        );
        let hi = udp_send(a.ns(), None, SocketAddr::new(v4, 15_000), 30, 64)?;
        println!("   udp/15000: {hi} sent (udp-high-drop)");
        let blk = udp_send(
            a.ns(),
            Some(SocketAddr::new(IpAddr::V4(BLOCKED_SRC), 0)),
            dns,
            10,
            64,
        )?;
        println!("   udp/53 from {BLOCKED_SRC}: {blk} sent (drop-blocklist)");

        let s = stats::read(&inst)?;
        println!();
        print!("{}", indent(&stats_table(&h, &s, prev.as_ref())));
        prev = Some(s);
    }
    println!(
        "\nweb server accepted {} connections; dns server received {} datagrams",
        web_rx.count(),
        dns_rx.count()
    );
    drop(web_rx);
    drop(dns_rx);

    let iface2 = iface.clone();
    b.ns().run(move || attach::detach(&iface2, false))??;
    drop(inst);
    drop(lab);
    println!("== detached, namespaces and veth pair removed");
    Ok(())
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("   {l}\n")
            }
        })
        .collect()
}
