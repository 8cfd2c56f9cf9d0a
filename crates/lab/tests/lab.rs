//! Lab tests: real namespaces, veths and traffic. They need root; under
//! `CI=true` they fail instead of skipping when not root.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::{Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use xdpwall_lab::traffic::{ping, tcp_connect_attempts, tcp_listen, udp_listen, udp_send};
use xdpwall_lab::{require_root, sweep_stale, Lab, LabOptions, Netns};

const T: Duration = Duration::from_secs(2);

/// Every `Netns::new` sweeps stale namespaces, so a test making one would
/// race `stale_sweeper_removes_dead_pid_namespaces`: it could delete that
/// test's planted namespace before the test looks. Tests hold this for
/// reading; that one holds it for writing. It orders this binary's tests
/// only (cargo runs test binaries one after another).
static SWEEPS: RwLock<()> = RwLock::new(());

/// `require_root`, and the shared hold on [`SWEEPS`] for the test's span.
fn root_and_sweeps(test: &str) -> Option<RwLockReadGuard<'static, ()>> {
    if !require_root(test) {
        return None;
    }
    // Only a writer that panicked poisons it; the lock guards no data, so
    // go on either way.
    Some(SWEEPS.read().unwrap_or_else(|e| e.into_inner()))
}

fn netns_list() -> String {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn listed(name: &str) -> bool {
    netns_list()
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

#[test]
fn lab_layout() {
    let Some(_sweeps) = root_and_sweeps("lab_layout") else {
        return;
    };
    let lab = Lab::new(LabOptions::default()).expect("lab");
    let (a, b) = (lab.a(), lab.b());
    assert_ne!(a.ns().name(), b.ns().name());
    assert!(a
        .ns()
        .name()
        .starts_with(&format!("xw-{}-", std::process::id())));
    assert_eq!(
        a.ns().path(),
        std::path::Path::new("/run/netns").join(a.ns().name())
    );
    assert_eq!((a.ifname(), b.ifname()), ("xwa", "xwb"));
    assert_eq!(a.ipv4().to_string(), "198.18.0.1");
    assert_eq!(b.ipv6().to_string(), "fd00:78:77::2");
    assert_eq!(lab.mtu(), 1500);
    for h in [a, b] {
        let show = h
            .ns()
            .ip(&["-o", "link", "show", h.ifname()])
            .expect("ip link");
        assert!(
            show.starts_with(&format!("{}: {}@", h.ifindex(), h.ifname())),
            "{show}"
        );
        assert!(
            show.contains("mtu 1500") && show.contains("LOWER_UP"),
            "{show}"
        );
        // Static neighbours both ways.
        let neigh = h
            .ns()
            .ip(&["neigh", "show", "dev", h.ifname()])
            .expect("ip neigh");
        assert_eq!(neigh.matches("PERMANENT").count(), 2, "{neigh}");
    }
    // command() and nsenter_command() run inside the namespace.
    for mut cmd in [a.ns().command("ip"), a.ns().nsenter_command("ip")] {
        let out = cmd
            .args(["-o", "addr", "show", "dev", "xwa"])
            .output()
            .expect("run");
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("198.18.0.1/24"));
    }
}

#[test]
fn ping_both_families_both_ways() {
    let Some(_sweeps) = root_and_sweeps("ping_both_families_both_ways") else {
        return;
    };
    let lab = Lab::new(LabOptions::default()).expect("lab");
    for (from, to) in [(lab.a(), lab.b()), (lab.b(), lab.a())] {
        for v6 in [false, true] {
            let out = ping(from.ns(), to.ip(v6), 3, T).expect("ping");
            assert_eq!(
                (out.sent, out.replies),
                (3, 3),
                "{} -> {}",
                from.ns().name(),
                to.ip(v6)
            );
        }
    }
}

#[test]
fn udp_reaches_listener() {
    let Some(_sweeps) = root_and_sweeps("udp_reaches_listener") else {
        return;
    };
    let lab = Lab::new(LabOptions::default()).expect("lab");
    for v6 in [false, true] {
        let rx = udp_listen(lab.b().ns(), SocketAddr::new(lab.b().ip(v6), 0)).expect("listen");
        let src = SocketAddr::new(lab.a().ip(v6), 40000);
        let sent = udp_send(lab.a().ns(), Some(src), rx.local_addr(), 20, 100).expect("send");
        assert_eq!(sent, 20);
        assert!(rx.wait_for(20, T), "got {} of 20", rx.count());
        assert_eq!(rx.bytes(), 2000);
        assert_eq!(rx.stop(), 20);
    }
}

#[test]
fn jumbo_mtu() {
    let Some(_sweeps) = root_and_sweeps("jumbo_mtu") else {
        return;
    };
    let lab = Lab::new(LabOptions::default().mtu(9000)).expect("lab");
    let show = lab.b().ns().ip(&["link", "show", "xwb"]).expect("ip link");
    assert!(show.contains("mtu 9000"), "{show}");
    let rx = udp_listen(lab.b().ns(), SocketAddr::new(lab.b().ip(false), 0)).expect("listen");
    assert_eq!(
        udp_send(lab.a().ns(), None, rx.local_addr(), 3, 8900).expect("send"),
        3
    );
    assert!(rx.wait_for(3, T));
    assert_eq!(rx.bytes(), 3 * 8900);
    assert!(Lab::new(LabOptions::default().mtu(10)).is_err());
}

#[test]
fn ipv4_only_lab() {
    let Some(_sweeps) = root_and_sweeps("ipv4_only_lab") else {
        return;
    };
    let lab = Lab::new(LabOptions::default().ipv6(false)).expect("lab");
    let addrs = lab
        .a()
        .ns()
        .ip(&["-6", "addr", "show", "dev", "xwa"])
        .expect("ip addr");
    assert!(addrs.trim().is_empty(), "{addrs}");
    assert_eq!(
        ping(lab.a().ns(), lab.b().ip(false), 1, T)
            .expect("ping")
            .replies,
        1
    );
}

#[test]
fn tcp_connects_and_refused() {
    let Some(_sweeps) = root_and_sweeps("tcp_connects_and_refused") else {
        return;
    };
    let lab = Lab::new(LabOptions::default()).expect("lab");
    for v6 in [false, true] {
        let l = tcp_listen(lab.b().ns(), SocketAddr::new(lab.b().ip(v6), 0)).expect("listen");
        let out = tcp_connect_attempts(lab.a().ns(), l.local_addr(), 3, T).expect("connect");
        assert_eq!((out.connected, out.refused, out.timed_out), (3, 0, 0));
        assert!(l.wait_for(3, T), "accepted {}", l.count());
        let closed = SocketAddr::new(lab.b().ip(v6), 9);
        let out = tcp_connect_attempts(lab.a().ns(), closed, 2, T).expect("connect");
        assert_eq!((out.connected, out.refused, out.timed_out), (0, 2, 0));
    }
}

#[test]
fn dropped_packets_time_out() {
    let Some(_sweeps) = root_and_sweeps("dropped_packets_time_out") else {
        return;
    };
    let lab = Lab::new(LabOptions::default()).expect("lab");
    // 198.18.0.3 resolves to a MAC nobody owns: b discards the frames, as an
    // XDP drop would.
    lab.a()
        .ns()
        .ip(&[
            "neigh",
            "replace",
            "198.18.0.3",
            "lladdr",
            "02:00:00:00:00:99",
            "dev",
            "xwa",
            "nud",
            "permanent",
        ])
        .expect("neigh");
    let ghost: IpAddr = "198.18.0.3".parse().expect("addr");
    let t = Duration::from_millis(300);
    let out =
        tcp_connect_attempts(lab.a().ns(), SocketAddr::new(ghost, 80), 1, t).expect("connect");
    assert_eq!((out.connected, out.refused, out.timed_out), (0, 0, 1));
    let p = ping(lab.a().ns(), ghost, 2, t).expect("ping");
    assert_eq!((p.sent, p.replies), (2, 0));
}

#[test]
fn namespaces_gone_after_drop() {
    let Some(_sweeps) = root_and_sweeps("namespaces_gone_after_drop") else {
        return;
    };
    let lab = Lab::new(LabOptions::default()).expect("lab");
    let names = [
        lab.a().ns().name().to_string(),
        lab.b().ns().name().to_string(),
    ];
    assert!(names.iter().all(|n| listed(n)));
    drop(lab);
    for n in &names {
        assert!(!listed(n), "{n} still exists");
    }
}

#[test]
fn panic_still_cleans_up() {
    let Some(_sweeps) = root_and_sweeps("panic_still_cleans_up") else {
        return;
    };
    let names = Mutex::new(Vec::new());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = Lab::new(LabOptions::default()).expect("lab");
        let single = Netns::new("solo").expect("netns");
        names.lock().expect("lock").extend([
            lab.a().ns().name().to_string(),
            lab.b().ns().name().to_string(),
            single.name().to_string(),
        ]);
        // A panic inside a namespace thread reaches the caller too.
        lab.a()
            .ns()
            .run(|| panic!("deliberate panic inside the lab"))
            .expect("run");
    }));
    assert!(r.is_err());
    let names = names.into_inner().expect("lock");
    assert_eq!(names.len(), 3);
    for n in &names {
        assert!(!listed(n), "{n} leaked after panic");
    }
}

#[test]
fn stale_sweeper_removes_dead_pid_namespaces() {
    if !require_root("stale_sweeper_removes_dead_pid_namespaces") {
        return;
    }
    // No other test of this binary sweeps while we plant and look.
    let _alone = SWEEPS.write().unwrap_or_else(|e| e.into_inner());
    // A pid that certainly existed and is now dead (reaped).
    let mut child = Command::new("true").spawn().expect("spawn");
    let dead = child.id();
    child.wait().expect("wait");
    let stale = format!("xw-{dead}-0-stale");
    let st = Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .expect("ip");
    assert!(st.success());
    assert!(listed(&stale));
    // Our own, live namespaces survive the sweep.
    let mine = Netns::new("live").expect("netns");
    let _ = sweep_stale().expect("sweep");
    assert!(!listed(&stale), "{stale} survived the sweep");
    assert!(listed(mine.name()));
}
