use std::collections::BTreeMap;
use std::path::PathBuf;

use etherparse::PacketBuilder;
use xdpwall_dataplane::load::{load, LoadOptions};
use xdpwall_rules::*;

fn rule(name: &str, cond: Conditions, action: Action) -> Rule {
    Rule { name: name.into(), line: 1, cond, action, log: None, sample: None }
}

#[test]
fn smoke() {
    let cfg = Config {
        path: PathBuf::from("t.toml"),
        xdp: XdpSection::default(),
        events: EventsSection::default(),
        sets: BTreeMap::new(),
        rules: vec![
            rule("ssh", Conditions { proto: Some(6), dport: Some(vec![PortRange { lo: 22, hi: 22 }]), ..Default::default() }, Action::Drop),
            rule("udp", Conditions { proto: Some(17), ..Default::default() }, Action::Pass),
        ],
    };
    let c = compile::compile(&cfg).unwrap();
    let inst = load(&c, LoadOptions { trace: true }).unwrap();
    let mut pkt = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4([1, 2, 3, 4], [5, 6, 7, 8], 64).tcp(1000, 22, 1, 100).write(&mut pkt, &[]).unwrap();
    let v = inst.test_run(&pkt).unwrap();
    println!("{v:?}");
    assert_eq!(v.rule, Some(0));
    assert_eq!(v.xdp, 1);
}
