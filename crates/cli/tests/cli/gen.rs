//! `xdpwall gen`: usage errors (unprivileged) and an exact frame count
//! across a real veth pair into a counting XDP_DROP receiver (root).

use serde_json::Value;
use xdpwall_gen::Receiver;
use xdpwall_lab::{require_root, Lab, LabOptions};

use crate::fixtures::{xdpwall, xdpwall_in, Via};

#[test]
fn gen_rejects_bad_arguments_with_exit_2() {
    for (args, why) in [
        (
            &["--dst", "198.18.0.2", "--src", "fd00::1"][..],
            "different families",
        ),
        (
            &[
                "--dst", "fd00::2", "--src", "fd00::1", "--syn", "--size", "64",
            ][..],
            "not in 74..=1514",
        ),
        (
            &[
                "--dst",
                "198.18.0.2",
                "--src",
                "198.18.0.1",
                "--size",
                "9000",
            ][..],
            "not in 60..=1514",
        ),
        (
            &[
                "--dst",
                "198.18.0.2",
                "--src",
                "198.18.0.1",
                "--rate",
                "fast",
            ][..],
            "not a rate",
        ),
        (
            &["--dst", "198.18.0.2", "--src", "198.18.0.9-198.18.0.1"][..],
            "below the first",
        ),
        (
            &[
                "--dst",
                "198.18.0.2",
                "--src",
                "198.18.0.1",
                "--sport",
                "9-1",
            ][..],
            "below the first",
        ),
        (
            &["--dst", "198.18.0.2", "--src", "198.18.0.1", "-d", "soon"][..],
            "not a duration",
        ),
        (
            &["--dst", "nowhere", "--src", "198.18.0.1"][..],
            "not an address",
        ),
    ] {
        let mut a = vec!["gen", "-i", "lo"];
        a.extend_from_slice(args);
        let out = xdpwall(&a);
        out.assert_code(2);
        assert!(out.stderr.contains(why), "{args:?}: {}", out.describe());
    }
}

/// Sends exactly N frames (one CPU, then all with a rate) and the peer's
/// XDP_DROP counter sees exactly what `gen --json` reports as sent and not
/// refused by the veth.
#[test]
fn gen_sends_an_exact_count_to_the_peer() {
    if !require_root("gen_sends_an_exact_count_to_the_peer") {
        return;
    }
    let lab = Lab::new(LabOptions::default().ipv6(false)).expect("building the lab");
    let (a, b) = (lab.a(), lab.b());
    let rx = Receiver::drop_all().expect("loading the receiver");
    let idx = b.ifindex();
    b.ns()
        .run(|| rx.attach(idx))
        .expect("netns")
        .expect("attach");
    let mac: Vec<String> = b.mac().iter().map(|x| format!("{x:02x}")).collect();
    let mac = mac.join(":");
    let mut expected = 0u64;
    for (via, extra) in [
        (
            Via::IpNetnsExec,
            vec![
                "--cpus",
                "0",
                "-c",
                "20000",
                "--src",
                "198.18.0.1-198.18.0.250",
            ],
        ),
        (
            Via::Nsenter,
            vec![
                "-c",
                "3001",
                "--rate",
                "200k",
                "--syn",
                "--dst",
                "fd00::2",
                "--src",
                "fd00::1:0/112",
                "--size",
                "1514",
            ],
        ),
    ] {
        let mut args = vec![
            "gen",
            "-i",
            a.ifname(),
            "--dst-mac",
            &mac,
            "--json",
            "--dport",
            "5353",
        ];
        if !extra.contains(&"--dst") {
            args.extend(["--dst", "198.18.0.2"]);
        }
        args.extend(extra.iter().copied());
        let out = xdpwall_in(a.ns(), via, &args);
        out.assert_code(0);
        let v: Value = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("{e}: {}", out.describe()));
        let frames = v["frames"].as_u64().unwrap_or(0);
        let want: u64 = args
            .iter()
            .skip_while(|x| **x != "-c")
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        assert_eq!(frames, want, "{}", out.describe());
        let per_cpu: u64 = v["per_cpu"]
            .as_array()
            .map_or(0, |a| a.iter().filter_map(|c| c["frames"].as_u64()).sum());
        assert_eq!(per_cpu, frames, "per-CPU frames add up");
        expected += frames - v["tx_dropped"].as_u64().unwrap_or(0);
        let mut got = 0;
        for _ in 0..200 {
            got = rx.count().expect("receiver count").packets;
            if got >= expected {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(
            got,
            expected,
            "the receiver counts what gen reports: {}",
            out.describe()
        );
    }
    b.ns()
        .run(|| rx.detach(idx))
        .expect("netns")
        .expect("detach");
}
