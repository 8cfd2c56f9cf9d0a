//! Whole-config tests: defaults, the DESIGN.md example, and every error kind
//! with its exact `line:col`.

use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;

use super::{load_config, parse_config};
use crate::error::ConfigError;
use crate::model::*;

use crate::testutil::TempDir;

fn ok(text: &str) -> Config {
    match parse_config(text, Path::new("rules.toml")) {
        Ok(cfg) => cfg,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

/// The diagnostics of an invalid config as `line:col: message`.
fn errs(text: &str) -> Vec<String> {
    match parse_config(text, Path::new("rules.toml")) {
        Ok(cfg) => panic!("expected errors, got {cfg:#?}"),
        Err(e) => e
            .diagnostics()
            .iter()
            .map(|d| {
                assert_eq!(d.path, Path::new("rules.toml"));
                format!("{}:{}: {}", d.line, d.col, d.message)
            })
            .collect(),
    }
}

/// The only diagnostic of `text`.
fn err(text: &str) -> String {
    let all = errs(text);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.into_iter().next().unwrap_or_default()
}

/// `text` as the body of one rule named `r` (line 1 is `[[rule]]`, line 2
/// `name`, so the body starts on line 3).
fn rule(body: &str) -> String {
    format!("[[rule]]\nname = \"r\"\n{body}\n")
}

fn net(s: &str) -> IpNet {
    s.parse().expect("test net")
}

const DESIGN_EXAMPLE: &str = r#"[xdp]
interface = "eth0"        # overridable with --iface
mode = "auto"             # auto | native | generic
default = "pass"          # pass | drop
malformed = "pass"        # pass | drop

[events]
transport = "ringbuf"     # ringbuf | perfbuf
buffer = "8MiB"           # total ring size (perfbuf: per-CPU share of it)
snaplen = 128             # bytes of each logged packet to carry
wakeup = "adaptive"       # every | N (one wake-up per N records) | adaptive

[sets]
blocklist = { file = "blocklist.txt" }    # one CIDR per line, v4 and v6, '#' comments
admins = ["192.0.2.10", "2001:db8:1::/64"]

[[rule]]
name = "drop-blocklist"
src = "@blocklist"
action = "drop"
log = { every = "1s" }

[[rule]]
name = "ssh-admins"
proto = "tcp"
dport = 22
src = "@admins"
action = "pass"

[[rule]]
name = "ssh-others"
proto = "tcp"
dport = 22
action = "drop"
log = true
sample = 10

[[rule]]
name = "dns-limit"
proto = "udp"
dport = 53
action = { rate_limit = { pps = 1000, burst = 2000, by = "src" } }
"#;

// ---------------------------------------------------------------- valid configs

#[test]
fn empty_config_has_defaults() {
    let cfg = ok("");
    assert_eq!(cfg.xdp, XdpSection::default());
    assert_eq!(cfg.events, EventsSection::default());
    assert_eq!(cfg.events.buffer, 8 << 20);
    assert!(cfg.sets.is_empty() && cfg.rules.is_empty());
    assert_eq!(cfg.path, Path::new("rules.toml"));
}

#[test]
fn design_example_parses() {
    let dir = TempDir::new("design");
    dir.write(
        "blocklist.txt",
        "# bad\n198.51.100.0/24\n203.0.113.7 # one host\n\n2001:db8:bad::/48\n",
    );
    let path = dir.write("rules.toml", DESIGN_EXAMPLE);
    let cfg = load_config(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.xdp.interface.as_deref(), Some("eth0"));
    assert_eq!(cfg.events, EventsSection::default());
    let block = &cfg.sets["blocklist"];
    assert_eq!(block.source, SetSource::File(dir.0.join("blocklist.txt")));
    assert_eq!(
        block.entries.to_vec(),
        vec![
            net("198.51.100.0/24"),
            net("203.0.113.7/32"),
            net("2001:db8:bad::/48")
        ]
    );
    assert_eq!(
        cfg.sets["admins"].entries.to_vec(),
        vec![net("192.0.2.10/32"), net("2001:db8:1::/64")]
    );
    assert_eq!(cfg.sets["admins"].source, SetSource::Inline);

    let names: Vec<&str> = cfg.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["drop-blocklist", "ssh-admins", "ssh-others", "dns-limit"]
    );
    let lines: Vec<usize> = cfg.rules.iter().map(|r| r.line).collect();
    assert_eq!(lines, [17, 23, 30, 38]);

    let r0 = &cfg.rules[0];
    assert_eq!(
        r0.cond.src,
        Some(AddrMatch {
            include: vec![AddrItem::Set("blocklist".into())],
            exclude: vec![]
        })
    );
    assert_eq!(r0.action, Action::Drop);
    assert_eq!(
        r0.log,
        Some(LogSpec {
            every: Some(Duration::from_secs(1)),
            snaplen: None
        })
    );
    let r1 = &cfg.rules[1];
    assert_eq!(r1.cond.proto, Some(6));
    assert_eq!(r1.cond.dport, Some(vec![PortRange { lo: 22, hi: 22 }]));
    let r2 = &cfg.rules[2];
    assert_eq!((r2.log, r2.sample), (Some(LogSpec::default()), Some(10)));
    assert_eq!(
        cfg.rules[3].action,
        Action::RateLimit(RateLimit {
            pps: 1000,
            burst: 2000,
            by: RateBy::Src
        })
    );
}

#[test]
fn every_section_value_form() {
    let cfg = ok(r#"
[xdp]
mode = "generic"
default = "drop"
malformed = "drop"
[events]
transport = "perfbuf"
buffer = 4096
snaplen = 0
wakeup = 16
"#);
    assert_eq!(
        cfg.xdp,
        XdpSection {
            interface: None,
            mode: Mode::Generic,
            default: Verdict::Drop,
            malformed: Verdict::Drop,
            rate_limit_table: crate::model::DEFAULT_RATE_LIMIT_TABLE,
        }
    );
    assert_eq!(
        cfg.events,
        EventsSection {
            transport: Transport::Perfbuf,
            buffer: 4096,
            snaplen: 0,
            wakeup: Wakeup::Batch(16)
        }
    );
    assert_eq!(
        ok("[events]\nbuffer = \"512KiB\"\nwakeup = \"every\"")
            .events
            .wakeup,
        Wakeup::Every
    );
    assert_eq!(ok("[events]\nbuffer = \"1GiB\"").events.buffer, 1 << 30);
}

#[test]
fn rule_conditions_are_normalised() {
    let cfg = ok(r#"
[sets]
admins = ["10.1.2.3/8", "10.0.0.0/8", "2001:db8::1"]
[[rule]]
name = "all"
src = ["10.0.0.1/8", "!@admins", "192.0.2.1", "10.0.0.0/8"]
dst = "! 2001:db8::/32"
proto = "TCP"
sport = [80, "1000-2000", "81", 1500]
dport = "0-65535"
tcp_flags = "SYN, !ack"
family = "ipv4"
vlan = 4095
fragment = "first"
action = "count"
log = { every = "100ms", snaplen = 64 }
[[rule]]
name = "icmp"
proto = 1
icmp_type = 8
icmp_code = 0
redirect = "veth1"
log = false
[[rule]]
name = "other"
proto = "99"
rate_limit = { pps = 5, burst = 10, by = "rule" }
"#);
    assert_eq!(
        cfg.sets["admins"].entries.to_vec(),
        vec![net("10.0.0.0/8"), net("2001:db8::1/128")]
    );
    let c = &cfg.rules[0].cond;
    let src = c.src.as_ref().expect("src");
    assert_eq!(
        src.include,
        vec![
            AddrItem::Net(net("10.0.0.0/8")),
            AddrItem::Net(net("192.0.2.1/32"))
        ]
    );
    assert_eq!(src.exclude, vec![AddrItem::Set("admins".into())]);
    assert_eq!(
        c.dst.as_ref().map(|d| d.exclude.clone()),
        Some(vec![AddrItem::Net(net("2001:db8::/32"))])
    );
    assert_eq!(c.proto, Some(6));
    let sport = vec![
        PortRange { lo: 80, hi: 81 },
        PortRange { lo: 1000, hi: 2000 },
    ];
    assert_eq!(c.sport, Some(sport));
    assert_eq!(c.dport, Some(vec![PortRange { lo: 0, hi: 65535 }]));
    assert_eq!(
        c.tcp_flags,
        Some(TcpFlags {
            set: 0x02,
            clear: 0x10
        })
    );
    assert_eq!(
        (c.family, c.vlan, c.fragment),
        (Some(Family::Ipv4), Some(4095), Some(FragMatch::First))
    );
    assert_eq!(cfg.rules[0].action, Action::Count);
    let log = LogSpec {
        every: Some(Duration::from_millis(100)),
        snaplen: Some(64),
    };
    assert_eq!(cfg.rules[0].log, Some(log));
    let r1 = &cfg.rules[1];
    assert_eq!((r1.cond.icmp_type, r1.cond.icmp_code), (Some(8), Some(0)));
    assert_eq!(
        (r1.action.clone(), r1.log),
        (Action::Redirect("veth1".into()), None)
    );
    let rl = RateLimit {
        pps: 5,
        burst: 10,
        by: RateBy::Rule,
    };
    assert_eq!(
        (cfg.rules[2].cond.proto, cfg.rules[2].action.clone()),
        (Some(99), Action::RateLimit(rl))
    );
}

#[test]
fn conditionless_rule_and_absent_proto_l4_fields() {
    let cfg = ok("[[rule]]\nname = \"all\"\naction = \"pass\"\n[[rule]]\nname = \"f\"\ntcp_flags = \"syn\"\ndport = 22\naction = \"drop\"\n[[rule]]\nname = \"i\"\nicmp_type = 3\naction = \"drop\"");
    assert_eq!(cfg.rules[0].cond, Conditions::default());
    assert_eq!(cfg.rules[1].cond.proto, None);
    assert_eq!(cfg.rules[2].cond.icmp_type, Some(3));
}

// ---------------------------------------------------------------- syntax, sections

#[test]
fn toml_syntax_errors() {
    assert_eq!(
        err("[xdp]\nmode = auto\n"),
        "2:8: invalid TOML: string values must be quoted, expected literal string"
    );
    assert_eq!(
        err("[xdp]\nmode = \"auto\"\nmode = \"native\"\n"),
        "3:1: duplicate key `mode`; each key may be set once per table"
    );
}

#[test]
fn unknown_sections_and_keys() {
    assert_eq!(
        err("[xdp]\nmode = \"auto\"\n  foo = 1\n"),
        "3:3: unknown key `foo` in [xdp]; expected one of: interface, mode, default, malformed, rate_limit_table"
    );
    assert_eq!(
        err("[events]\nring = 1"),
        "2:1: unknown key `ring` in [events]; expected one of: transport, buffer, snaplen, wakeup"
    );
    assert_eq!(
        err("[sources]\n"),
        "1:2: unknown section `sources`; expected one of: [xdp], [events], [sets], [[rule]]"
    );
    assert_eq!(
        err("xdp = 1\n"),
        "1:7: xdp: expected a table (write a [xdp] section), found an integer"
    );
    assert_eq!(
        err("[rule]\nname = \"x\"\n"),
        "1:1: rule: expected an array of tables; write each rule as [[rule]]"
    );
}

#[test]
fn xdp_value_errors() {
    assert_eq!(
        err("[xdp]\nmode = \"fast\""),
        "2:8: mode: unknown value `fast`; expected one of: auto, native, generic"
    );
    assert_eq!(
        err("[xdp]\ndefault = 1"),
        "2:11: default: expected one of: pass, drop, found an integer"
    );
    assert_eq!(
        err("[xdp]\nmalformed = \"reject\""),
        "2:13: malformed: unknown value `reject`; expected one of: pass, drop"
    );
    assert_eq!(err("[xdp]\ninterface = \"a-very-long-interface\""), "2:13: interface: interface name `a-very-long-interface` is 21 bytes long; the maximum is 15");
}

#[test]
fn events_value_errors() {
    assert_eq!(err("[events]\nbuffer = \"8MB\""), "2:10: buffer: `8MB` is not a size; expected bytes as an integer or a string like \"512KiB\", \"8MiB\", \"1GiB\"");
    let pow2 = "buffer: 5000 bytes is not allowed; it must be a power of two from 4096 (4KiB) to 2GiB, e.g. \"8MiB\"";
    assert_eq!(err("[events]\nbuffer = 5000"), format!("2:10: {pow2}"));
    assert!(err("[events]\nbuffer = \"2KiB\"")
        .contains("2048 bytes is not allowed; it must be a power of two from 4096"));
    assert_eq!(
        err("[events]\nsnaplen = 70000"),
        "2:11: snaplen: 70000 is out of range 0-65535"
    );
    assert_eq!(
        err("[events]\nwakeup = 0"),
        "2:10: wakeup: 0 is too small; it must be at least 1"
    );
    assert_eq!(err("[events]\nwakeup = \"often\""), "2:10: wakeup: unknown value `often`; expected \"every\", \"adaptive\" or a number of records N >= 1");
    assert_eq!(
        err("[events]\ntransport = \"xsk\""),
        "2:13: transport: unknown value `xsk`; expected one of: ringbuf, perfbuf"
    );
}

// ---------------------------------------------------------------- sets

#[test]
fn inline_set_errors() {
    assert_eq!(
        err("[sets]\n\"bad name\" = []"),
        "2:1: set name `bad name` is not valid; use letters, digits, `_` and `-` only"
    );
    assert_eq!(err("[sets]\na = [\"10.0.0.0/8\", \"10.0.0.300\"]"), "2:20: sets.a: `10.0.0.300` is not a CIDR or IP address; expected e.g. 192.0.2.0/24 or 2001:db8::1");
    assert_eq!(
        err("[sets]\na = [\"10.0.0.0/40\"]"),
        "2:6: sets.a: `10.0.0.0/40`: prefix `/40` is out of range 0-32"
    );
    assert_eq!(
        err("[sets]\na = [1]"),
        "2:6: sets.a: expected a CIDR or IP address string, found an integer"
    );
    assert_eq!(
        err("[sets]\na = \"10.0.0.0/8\""),
        "2:5: sets.a: expected a list of CIDRs or { file = \"path\" }, found a string"
    );
    assert_eq!(
        errs("[sets]\na = { path = \"x\" }"),
        [
            "2:5: sets.a: missing `file`; expected a list of CIDRs or { file = \"path\" }",
            "2:7: unknown key `path` in sets.a; expected one of: file",
        ]
    );
}

#[test]
fn set_file_errors_use_the_set_files_path_and_line() {
    let dir = TempDir::new("setfile");
    dir.write(
        "lists/block.txt",
        "10.0.0.0/8\n# comment\n   300.1.1.1 # bad\n2001:db8::/33 extra\n",
    );
    let cfg = "[sets]\nblock = { file = \"lists/block.txt\" }\n[[rule]]\nname = \"x\"\nsrc = \"@block\"\naction = \"drop\"\n";
    let path = dir.write("rules.toml", cfg);
    let Err(e) = load_config(&path) else {
        panic!("expected errors")
    };
    let set_path = dir.0.join("lists/block.txt");
    let shown: Vec<String> = e.diagnostics().iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec![
            format!("{}:3:4: `300.1.1.1` is not a CIDR or IP address; expected e.g. 192.0.2.0/24 or 2001:db8::1", set_path.display()),
            format!("{}:4:15: unexpected `extra`; expected one CIDR or address per line", set_path.display()),
        ]
    );
}

#[test]
fn unreadable_set_file_is_reported_at_the_file_value() {
    let dir = TempDir::new("missing");
    let path = dir.write("rules.toml", "[sets]\nblock = { file = \"nope.txt\" }\n");
    let Err(e) = load_config(&path) else {
        panic!("expected errors")
    };
    let d = &e.diagnostics()[0];
    assert_eq!((d.path.as_path(), d.line, d.col), (path.as_path(), 2, 18));
    let expected = format!(
        "sets.block: cannot read set file {}: No such file or directory",
        dir.0.join("nope.txt").display()
    );
    assert_eq!(d.message, expected);
}

#[test]
fn unreadable_config_is_an_io_error() {
    let e = load_config(Path::new("/nonexistent-xdpwall/rules.toml")).expect_err("missing file");
    assert!(matches!(e, ConfigError::Io { .. }));
    assert_eq!(
        e.to_string(),
        "cannot read /nonexistent-xdpwall/rules.toml: No such file or directory"
    );
}

#[test]
fn config_that_is_not_a_text_file_is_refused() {
    let dir = TempDir::new("hostile-config");
    // Binary: the first NUL or invalid UTF-8 byte, with its line and column.
    let bin = dir.write_bytes("bin.toml", b"[xdp]\nmode = \"auto\"\n\x7fELF\x00\x01");
    assert_eq!(
        load_config(&bin).expect_err("binary").to_string(),
        format!(
            "{}:3:5: binary file? found a NUL byte; a config is UTF-8 TOML text",
            bin.display()
        )
    );
    let latin1 = dir.write_bytes("latin1.toml", b"# caf\xe9\n");
    assert!(load_config(&latin1)
        .expect_err("latin1")
        .to_string()
        .ends_with(":1:6: binary file? found invalid UTF-8; a config is UTF-8 TOML text"));
    // Too big: refused before reading, naming the limit.
    let big = dir.0.join("big.toml");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(crate::input::MAX_CONFIG_BYTES + 1)
        .expect("grow");
    assert_eq!(
        load_config(&big).expect_err("too big").to_string(),
        format!(
            "cannot read {}: is 16777217 bytes, over the limit of 16777216 bytes \
             (config size limit)",
            big.display()
        )
    );
    // A directory, a FIFO (never opened, so this returns), a symlink loop.
    assert_eq!(
        load_config(&dir.0).expect_err("dir").to_string(),
        format!(
            "cannot read {}: is a directory; expected a file",
            dir.0.display()
        )
    );
    let fifo = dir.0.join("fifo.toml");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    assert!(load_config(&fifo)
        .expect_err("fifo")
        .to_string()
        .ends_with("is a FIFO (named pipe), not a regular file; give the path of a file"));
    let looped = dir.0.join("loop.toml");
    std::os::unix::fs::symlink(&looped, &looped).expect("symlink");
    assert!(load_config(&looped)
        .expect_err("loop")
        .to_string()
        .ends_with("Too many levels of symbolic links (a symlink loop?)"));
}

#[test]
fn set_file_that_is_a_directory_or_binary_is_reported_at_the_file_value() {
    let dir = TempDir::new("hostile-sets");
    std::fs::create_dir(dir.0.join("sets")).expect("mkdir");
    dir.write_bytes("bin.txt", b"10.0.0.0/8\n\x00\x00\x00");
    let toml = "[sets]\nd = { file = \"sets\" }\nb = { file = \"bin.txt\" }\n";
    let path = dir.write("rules.toml", toml);
    let e = load_config(&path).expect_err("bad sets");
    let shown: Vec<String> = e.diagnostics().iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec![
            format!(
                "{}:2:14: sets.d: cannot read set file {}: is a directory; expected a file",
                path.display(),
                dir.0.join("sets").display()
            ),
            format!(
                "{}:2:1: binary file? line has a NUL byte; a set file is text, one CIDR or \
                 address per line",
                dir.0.join("bin.txt").display()
            ),
        ]
    );
}

#[test]
fn unreadable_files_say_what_to_check() {
    // Root reads any file, so the message is checked on the error itself.
    let error = crate::input::InputError::Io(std::io::Error::from_raw_os_error(libc::EACCES));
    assert_eq!(
        error.to_string(),
        "Permission denied (check the file's owner and mode)"
    );
}

// ---------------------------------------------------------------- rule structure

#[test]
fn rule_name_errors() {
    assert_eq!(
        err("\n[[rule]]\naction = \"pass\""),
        "2:1: rule has no `name`; every [[rule]] needs a unique name"
    );
    let dup =
        "[[rule]]\nname = \"a\"\naction = \"pass\"\n\n[[rule]]\nname = \"a\"\naction = \"drop\"\n";
    assert_eq!(
        err(dup),
        "6:8: duplicate rule name `a`; first defined at line 1"
    );
    assert_eq!(
        err("[[rule]]\nname = \" \"\naction = \"pass\""),
        "2:8: name: ` ` is not a usable rule name"
    );
    let longest = "n".repeat(63);
    assert!(parse_config(&rule_named(&longest), Path::new("rules.toml")).is_ok());
    let long = "é".repeat(32);
    assert_eq!(
        err(&rule_named(&long)),
        format!(
            "2:8: name: `{long}` is 64 bytes, over the limit of 63 bytes (struct xw_rule \
             name); use a shorter name"
        )
    );
}

fn rule_named(name: &str) -> String {
    format!("[[rule]]\nname = \"{name}\"\naction = \"pass\"\n")
}

#[test]
fn rule_unknown_key() {
    let msg = err(&rule("action = \"pass\"\nport = 22"));
    assert!(msg.starts_with("4:1: unknown key `port` in [[rule]]; expected one of: name, src, dst, proto, sport, dport,"), "{msg}");
}

#[test]
fn action_errors() {
    assert_eq!(err(&rule("")), "1:1: rule has no action; add action = \"pass\", \"drop\", \"count\", { redirect = \"ifname\" } or { rate_limit = { pps = N, burst = N, by = \"src\" } }");
    assert_eq!(err(&rule("action = \"reject\"")), "3:10: action: unknown action `reject`; expected \"pass\", \"drop\", \"count\", { redirect = \"ifname\" } or { rate_limit = { pps = N, burst = N, by = \"src\" } }");
    assert_eq!(
        err(&rule("action = \"redirect\"")),
        "3:10: action: redirect needs a target; write action = { redirect = \"eth1\" }"
    );
    assert_eq!(
        err(&rule("action = \"drop\"\nredirect = \"eth1\"")),
        "4:1: `redirect` and `action` both set the action; use exactly one of them"
    );
    assert!(err(&rule(
        "action = { redirect = \"eth1\", rate_limit = { pps = 1, burst = 1 } }"
    ))
    .starts_with("3:10: action: expected exactly one of redirect or rate_limit, as in "));
    assert_eq!(
        err(&rule("action = { rate_limit = { pps = 0, burst = 5 } }")),
        "3:33: action.rate_limit.pps: 0 is too small; it must be at least 1"
    );
    assert_eq!(err(&rule("rate_limit = { pps = 10 }")), "3:14: rate_limit: missing `burst`; expected { pps = N, burst = N, by = \"src\" | \"rule\" }");
    assert_eq!(
        err(&rule("rate_limit = { pps = 1, burst = 1, by = \"dst\" }")),
        "3:41: rate_limit.by: unknown value `dst`; expected one of: src, rule"
    );
    assert_eq!(
        err(&rule("rate_limit = { pps = 1, burst = 1, per = 2 }")),
        "3:36: unknown key `per` in rate_limit; expected one of: pps, burst, by"
    );
    assert_eq!(
        err(&rule("redirect = \"\"")),
        "3:12: redirect: interface name `` is empty"
    );
    // Limits the data plane's nanotoken bucket can hold without overflow.
    assert_eq!(
        err(&rule("rate_limit = { pps = 1000000001, burst = 1 }")),
        "3:22: rate_limit.pps: 1000000001 is too large; the maximum is 1000000000"
    );
    assert_eq!(
        err(&rule("rate_limit = { pps = 1, burst = 0 }")),
        "3:33: rate_limit.burst: 0 is too small; it must be at least 1"
    );
    assert_eq!(
        err(&rule("rate_limit = { pps = 1, burst = 1000000001 }")),
        "3:33: rate_limit.burst: 1000000001 is too large; the maximum is 1000000000"
    );
}

#[test]
fn rate_limit_table_setting() {
    let cfg = ok("[xdp]\nrate_limit_table = 1024\n");
    assert_eq!(cfg.xdp.rate_limit_table, 1024);
    assert_eq!(
        ok("").xdp.rate_limit_table,
        crate::model::DEFAULT_RATE_LIMIT_TABLE
    );
    assert_eq!(
        err("[xdp]\nrate_limit_table = 0\n"),
        "2:20: rate_limit_table: 0 is too small; it must be at least 1"
    );
    assert_eq!(
        err("[xdp]\nrate_limit_table = 4194305\n"),
        "2:20: rate_limit_table: 4194305 is too large; the maximum is 4194304"
    );
    assert_eq!(
        err("[xdp]\nrate_limit_table = \"big\"\n"),
        "2:20: rate_limit_table: expected an integer, found a string"
    );
}

#[test]
fn log_and_sample_errors() {
    assert_eq!(
        err(&rule("action = \"pass\"\nlog = \"yes\"")),
        "4:7: log: expected true, false or { every = \"1s\", snaplen = N }, found a string"
    );
    assert_eq!(err(&rule("action = \"pass\"\nlog = { every = \"1.5s\" }")), "4:17: log.every: `1.5s` is not a duration; expected an integer with ns, us, ms, s or m, e.g. \"100ms\"");
    assert_eq!(
        err(&rule("action = \"pass\"\nlog = { every = \"0s\" }")),
        "4:17: log.every: must be more than 0; omit `every` to log every match"
    );
    assert_eq!(
        err(&rule("action = \"pass\"\nlog = { snaplen = 65536 }")),
        "4:19: log.snaplen: 65536 is out of range 0-65535"
    );
    assert_eq!(
        err(&rule(
            "action = \"pass\"\nlog = { every = \"1s\", count = 1 }"
        )),
        "4:23: unknown key `count` in log; expected one of: every, snaplen"
    );
    assert_eq!(
        err(&rule("action = \"pass\"\nsample = 0")),
        "4:10: sample: 0 is too small; it must be at least 1"
    );
}

#[test]
fn too_many_rules() {
    let mut text = String::new();
    for i in 0..=MAX_RULES {
        text.push_str(&format!("[[rule]]\nname = \"r{i}\"\naction = \"pass\"\n"));
    }
    let line = MAX_RULES * 3 + 1;
    assert_eq!(
        err(&text),
        format!("{line}:1: too many rules: 16385 (the maximum is 16384)")
    );
    text.truncate(text.len() - "[[rule]]\nname = \"r16384\"\naction = \"pass\"\n".len());
    assert_eq!(ok(&text).rules.len(), MAX_RULES);
}

// ---------------------------------------------------------------- conditions

#[test]
fn address_errors() {
    assert_eq!(err(&rule("src = []\naction = \"drop\"")), "3:7: src: empty list; expected a CIDR, an address or \"@set\" (optionally prefixed with `!`), or a list of them");
    assert_eq!(
        err(&rule(
            "src = [\"10.0.0.0/8\", \"10.0.0.0/99\"]\naction = \"drop\""
        )),
        "3:22: src: `10.0.0.0/99`: prefix `/99` is out of range 0-32"
    );
    assert_eq!(
        err(&rule("dst = \"@nope\"\naction = \"drop\"")),
        "3:7: dst: unknown set `@nope`; no sets are defined in [sets]"
    );
    assert_eq!(
        err(&format!(
            "[sets]\na = []\n{}",
            rule("src = \"!@b\"\naction = \"drop\"")
        )),
        "5:7: src: unknown set `@b`; defined sets: @a"
    );
    assert_eq!(err(&rule("src = 10\naction = \"drop\"")), "3:7: src: expected a CIDR, an address or \"@set\" (optionally prefixed with `!`), or a list of them, found an integer");
}

#[test]
fn proto_errors() {
    assert_eq!(err(&rule("proto = \"tcpp\"\naction = \"drop\"")), "3:9: proto: unknown protocol `tcpp`; expected tcp, udp, icmp, icmpv6, sctp, gre, esp, ah, ipip, ipv6, ospf or a number 0-255");
    assert_eq!(
        err(&rule("proto = 256\naction = \"drop\"")),
        "3:9: proto: 256 is out of range 0-255"
    );
}

#[test]
fn port_errors() {
    assert_eq!(
        err(&rule("dport = 70000\naction = \"drop\"")),
        "3:9: dport: 70000 is out of range 0-65535"
    );
    assert_eq!(
        err(&rule("sport = -1\naction = \"drop\"")),
        "3:9: sport: -1 is out of range 0-65535"
    );
    assert_eq!(
        err(&rule("dport = [22, \"2000-1000\"]\naction = \"drop\"")),
        "3:14: dport: range 2000-1000 is inverted; write 1000-2000"
    );
    assert_eq!(
        err(&rule("dport = \"1-70000\"\naction = \"drop\"")),
        "3:9: dport: 70000 is out of range 0-65535"
    );
    assert_eq!(
        err(&rule("dport = \"ssh\"\naction = \"drop\"")),
        "3:9: dport: `ssh` is not a port or range; expected e.g. \"22\" or \"1024-65535\""
    );
    assert_eq!(
        err(&rule("dport = []\naction = \"drop\"")),
        "3:9: dport: empty list; expected a port, \"lo-hi\" or a list of them"
    );
    assert_eq!(
        err(&rule("dport = 1.5\naction = \"drop\"")),
        "3:9: dport: expected a port, \"lo-hi\" or a list of them, found a float"
    );
}

#[test]
fn conditions_that_cannot_match_together() {
    assert_eq!(
        err(&rule("proto = \"icmp\"\ndport = 22\naction = \"drop\"")),
        "4:1: dport: ports need proto tcp, udp or sctp; proto icmp has no ports"
    );
    assert_eq!(
        err(&rule("proto = 47\nsport = 1\naction = \"drop\"")),
        "4:1: sport: ports need proto tcp, udp or sctp; proto gre has no ports"
    );
    assert_eq!(
        err(&rule(
            "proto = \"udp\"\ntcp_flags = \"syn\"\naction = \"drop\""
        )),
        "4:1: tcp_flags: needs proto tcp; proto udp has no tcp flags"
    );
    assert_eq!(
        err(&rule("proto = \"tcp\"\nicmp_type = 8\naction = \"drop\"")),
        "4:1: icmp_type: needs proto icmp or icmpv6; proto tcp has no icmp type"
    );
    assert_eq!(
        err(&rule("proto = 200\nicmp_code = 0\naction = \"drop\"")),
        "4:1: icmp_code: needs proto icmp or icmpv6; proto 200 has no icmp code"
    );
    assert_eq!(
        err(&rule("icmp_type = 8\ndport = 1\naction = \"drop\"")),
        "3:1: icmp_type: never matches together with dport; ICMP has no ports or tcp flags"
    );
    assert_eq!(
        err(&rule(
            "proto = \"icmp\"\nfamily = \"ipv6\"\naction = \"drop\""
        )),
        "4:1: family: ipv6 never matches proto icmp; use icmpv6"
    );
    assert_eq!(
        err(&rule(
            "proto = \"icmpv6\"\nfamily = \"ipv4\"\naction = \"drop\""
        )),
        "4:1: family: ipv4 never matches proto icmpv6; use icmp"
    );
    assert_eq!(
        err(&rule(
            "family = \"ipv4\"\nsrc = [\"2001:db8::/32\", \"!10.0.0.0/8\"]\naction = \"drop\""
        )),
        "4:1: src: has only IPv6 networks, so it never matches family ipv4"
    );
    assert_eq!(err(&rule("src = \"10.0.0.0/8\"\ndst = \"::1\"\naction = \"drop\"")), "4:1: dst: has only IPv6 networks but src only IPv4; a packet has one family, so the rule never matches");
    assert_eq!(
        errs(&rule("fragment = \"non-first\"\ndport = 53\nicmp_code = 1\naction = \"drop\"")),
        [
            "3:1: fragment: \"non-first\" never matches with dport, icmp_code; non-first fragments carry no L4 header",
            "5:1: icmp_code: never matches together with dport; ICMP has no ports or tcp flags",
        ]
    );
    assert_eq!(errs(&rule("fragment = \"non-first\"\nproto = \"udp\"\ndport = 53\naction = \"drop\"")), ["3:1: fragment: \"non-first\" never matches with dport; non-first fragments carry no L4 header"]);
}

#[test]
fn mixed_sets_and_families_are_fine() {
    let cfg = ok(&format!(
        "[sets]\na = [\"2001:db8::/32\"]\n{}",
        rule("family = \"ipv4\"\nsrc = [\"@a\"]\ndst = \"!2001:db8::/32\"\naction = \"drop\"")
    ));
    assert_eq!(cfg.rules.len(), 1);
}

#[test]
fn tcp_flag_and_number_errors() {
    assert_eq!(
        err(&rule("tcp_flags = \"syn,!syn\"\naction = \"drop\"")),
        "3:13: tcp_flags: `syn` is both required set and clear"
    );
    assert_eq!(err(&rule("tcp_flags = \"syn,foo\"\naction = \"drop\"")), "3:13: tcp_flags: unknown flag `foo`; expected fin, syn, rst, psh, ack, urg, ece, cwr (prefix `!` for clear)");
    assert_eq!(
        err(&rule("icmp_type = 256\naction = \"drop\"")),
        "3:13: icmp_type: 256 is out of range 0-255"
    );
    assert_eq!(
        err(&rule("vlan = 4096\naction = \"drop\"")),
        "3:8: vlan: 4096 is out of range 0-4095"
    );
    assert_eq!(
        err(&rule("family = \"inet\"\naction = \"drop\"")),
        "3:10: family: unknown value `inet`; expected one of: ipv4, ipv6"
    );
    assert_eq!(
        err(&rule("fragment = \"last\"\naction = \"drop\"")),
        "3:12: fragment: unknown value `last`; expected one of: any, first, non-first, none"
    );
}

#[test]
fn many_errors_are_collected_in_file_order() {
    let text = "[xdp]\nmode = \"x\"\n[events]\nsnaplen = -1\n[[rule]]\nname = \"a\"\ndport = 70000\nsport = \"9-1\"\n";
    assert_eq!(
        errs(text),
        [
            "2:8: mode: unknown value `x`; expected one of: auto, native, generic",
            "4:11: snaplen: -1 is out of range 0-65535",
            "5:1: rule has no action; add action = \"pass\", \"drop\", \"count\", { redirect = \"ifname\" } or { rate_limit = { pps = N, burst = N, by = \"src\" } }",
            "7:9: dport: 70000 is out of range 0-65535",
            "8:9: sport: range 9-1 is inverted; write 1-9",
        ]
    );
    let shown = parse_config(text, Path::new("conf/rules.toml"))
        .expect_err("invalid")
        .to_string();
    assert!(
        shown.starts_with("conf/rules.toml:2:8: mode: unknown value `x`"),
        "{shown}"
    );
    assert_eq!(shown.lines().count(), 5);
}

#[test]
fn columns_count_characters() {
    assert_eq!(
        err("# é\n[xdp]\nmode = \"é\"  "),
        "3:8: mode: unknown value `é`; expected one of: auto, native, generic"
    );
    assert_eq!(
        err("[xdp] # ééé\nfoo = 1"),
        "2:1: unknown key `foo` in [xdp]; expected one of: interface, mode, default, malformed, rate_limit_table"
    );
    assert_eq!(
        err("[[rule]]\nname = \"é\" ; action = \"pass\"")
            .split(':')
            .take(2)
            .collect::<Vec<_>>(),
        ["2", "12"]
    );
}
