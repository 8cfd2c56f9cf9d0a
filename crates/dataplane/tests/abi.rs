//! The C and Rust views of the data-plane ABI agree.
//!
//! A small C program including `bpf/abi.h` prints `sizeof`/`offsetof` of every
//! field of every shared struct and the value of every `#define`/enum the
//! Rust side mirrors; the test compares them with `size_of`/`offset_of!` of
//! the generated `xdpwall_dataplane::types` and with the constants of
//! `xdpwall_rules::compile::abi`. No privileges needed (only a C compiler).

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use xdpwall_dataplane::types::{
    xw_actstat, xw_class, xw_counter, xw_direct, xw_event, xw_first, xw_info, xw_lone4, xw_lpm4,
    xw_lpm6, xw_node4, xw_rl_key, xw_rule, xw_span, xw_tables, xw_tap, xw_trace, xw_wake,
};
use xdpwall_rules::compile::{abi, Field};

fn bpf_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bpf")
}

/// Every struct and its fields, as written in abi.h.
const STRUCTS: &[(&str, &[&str])] = &[
    ("xw_class", &["ncand", "flags", "first", "cand", "bits"]),
    ("xw_direct", &["key_mask", "key_want", "port"]),
    ("xw_first", &["d", "action", "slot"]),
    ("xw_lpm4", &["prefixlen", "addr"]),
    ("xw_node4", &["c"]),
    ("xw_lone4", &["mask", "want", "inside", "outside"]),
    (
        "xw_tables",
        &[
            "gen",
            "proto",
            "sport",
            "dport",
            "tcpflags",
            "icmp",
            "family",
            "vlan",
            "frag",
            "src4_dir",
            "dst4_dir",
            "src4_lens",
            "dst4_lens",
            "src6_dir",
            "dst6_dir",
        ],
    ),
    ("xw_lpm6", &["prefixlen", "gen", "addr"]),
    (
        "xw_rule",
        &[
            "action",
            "flags",
            "slot",
            "direct",
            "d",
            "snaplen",
            "sample",
            "every_ns",
            "rl_pps",
            "rl_cap",
            "rl_fill_ns",
            "name",
            "pad",
        ],
    ),
    ("xw_span", &["lo", "span"]),
    (
        "xw_actstat",
        &[
            "limited",
            "limited_bytes",
            "redirect_err",
            "redirect_err_bytes",
        ],
    ),
    ("xw_rl_key", &["rule", "family", "addr"]),
    ("xw_counter", &["packets", "bytes"]),
    (
        "xw_info",
        &[
            "magic",
            "pid",
            "loaded_unix_ns",
            "delivered",
            "mode",
            "transport",
            "default_action",
            "malformed_action",
            "nrules",
            "ifindex",
            "config",
        ],
    ),
    ("xw_trace", &["rule", "action", "malformed", "flags"]),
    (
        "xw_event",
        &[
            "ts_ns", "ifindex", "rx_queue", "cpu", "rule", "verdict", "wire_len", "cap_len", "kind",
        ],
    ),
    ("xw_wake", &["last_ns", "pending"]),
    (
        "xw_tap",
        &["enabled", "snaplen", "transport", "flags", "expires_ns"],
    ),
];

/// Every `#define` and enum constant the test reads from the header.
const NAMES: &[&str] = &[
    "XW_MAX_RULES",
    "XW_BITMAP_WORDS",
    "XW_MAX_CANDS",
    "XW_CAND_COUNT",
    "XW_CAND_DIRECT",
    "XW_KEY_PROTO",
    "XW_KEY_TCPF",
    "XW_KEY_ICMP",
    "XW_KEY_FAMILY",
    "XW_KEY_FRAG",
    "XW_CAND_ID_MASK",
    "XW_CAND_CHECK_SHIFT",
    "XW_NO_RULE",
    "XW_CLASS_OVERFLOW",
    "XW_ID_OVERFLOW",
    "XW_ID_TERMINALS",
    "XW_ID_COUNTS",
    "XW_ID_MASK",
    "XW_ID_TRIE",
    "XW_ID_NODE",
    "XW_ID_LONE",
    "XW_LONE_MASK",
    "XW_NODE_FANOUT",
    "XW_LONG4_MIN",
    "XW_GEN_SHIFT",
    "XW_DIR_BITS",
    "XW_DIR_ENTRIES",
    "XW_PORT_NONE",
    "XW_PORT_ENTRIES",
    "XW_PROTO_NONE",
    "XW_PROTO_ENTRIES",
    "XW_TCPF_NONE",
    "XW_TCPF_ENTRIES",
    "XW_ICMP_NONE",
    "XW_ICMP_ENTRIES",
    "XW_FAMILY_NONE",
    "XW_FAMILY_IPV4",
    "XW_FAMILY_IPV6",
    "XW_FAMILY_ENTRIES",
    "XW_VLAN_NONE",
    "XW_VLAN_ENTRIES",
    "XW_FRAG_NONE",
    "XW_FRAG_FIRST",
    "XW_FRAG_NON_FIRST",
    "XW_FRAG_NOT_IP",
    "XW_FRAG_ENTRIES",
    "XW_F_SRC",
    "XW_F_DST",
    "XW_F_PROTO",
    "XW_F_SPORT",
    "XW_F_DPORT",
    "XW_F_TCPFLAGS",
    "XW_F_ICMP",
    "XW_F_FAMILY",
    "XW_F_VLAN",
    "XW_F_FRAG",
    "XW_F_MAX",
    "XW_ACT_PASS",
    "XW_ACT_DROP",
    "XW_ACT_COUNT",
    "XW_ACT_REDIRECT",
    "XW_ACT_RATE_LIMIT",
    "XW_RULE_BY_SRC",
    "XW_RL_TOKEN",
    "XW_RL_MAX_PPS",
    "XW_RL_MAX_BURST",
    "XW_TRACE_LIMITED",
    "XW_TRACE_REDIRECT_ERR",
    "XW_MAL_TRUNCATED",
    "XW_MAL_BAD_HEADER",
    "XW_MAL_EXT_TOO_DEEP",
    "XW_MAL_VLAN_TOO_DEEP",
    "XW_MAL_MAX",
    "XW_COUNTER_SLOTS",
    "XW_STAT_DEFAULT",
    "XW_STAT_ENTRIES",
    "XW_NAME_LEN",
    "XW_INFO_MAGIC",
    "XW_PATH_LEN",
    "XW_RULE_LOG",
    "XW_RULE_SAMPLE",
    "XW_MAX_SNAPLEN",
    "XW_EV_LOG",
    "XW_EV_SAMPLE",
    "XW_TRANSPORT_RINGBUF",
    "XW_TRANSPORT_PERFBUF",
    "XW_WAKE_EVERY",
    "XW_WAKE_BATCH",
    "XW_WAKE_ADAPTIVE",
    "XW_EVS_PRODUCED",
    "XW_EVS_LOST",
    "XW_EVS_WAKEUPS",
    "XW_EVS_MAX",
    "XW_EVS_TAP_PRODUCED",
    "XW_EVS_TAP_LOST",
    "XW_EV_CAPTURE",
    "XW_TAP_RING_SIZE",
    "XW_TAP_DROPS",
    "XW_XERR_EXC_INVALID",
    "XW_XERR_REDIRECT",
    "XW_XERR_REDIRECT_MAP",
    "XW_XERR_MAX",
];

/// The probe's output, computed once per test binary.
fn c_view() -> BTreeMap<String, u64> {
    static VIEW: std::sync::OnceLock<BTreeMap<String, u64>> = std::sync::OnceLock::new();
    VIEW.get_or_init(run_probe).clone()
}

/// Compiles and runs the probe; returns `name -> value`.
fn run_probe() -> BTreeMap<String, u64> {
    let mut src = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"abi.h\"\n\
         #define S(t) printf(\"sizeof.\" #t \" %zu\\n\", sizeof(struct t));\n\
         #define O(t, f) printf(\"offsetof.\" #t \".\" #f \" %zu\\n\", offsetof(struct t, f)); \
         printf(\"sizeof.\" #t \".\" #f \" %zu\\n\", sizeof(((struct t *)0)->f));\n\
         #define D(n) printf(#n \" %llu\\n\", (unsigned long long)(n));\n\
         int main(void) {\n",
    );
    for (s, fields) in STRUCTS {
        src.push_str(&format!("S({s})\n"));
        for f in *fields {
            src.push_str(&format!("O({s}, {f})\n"));
        }
    }
    for n in NAMES {
        src.push_str(&format!("D({n})\n"));
    }
    src.push_str("return 0;\n}\n");

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("abi-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create probe dir");
    let c = dir.join("probe.c");
    let exe = dir.join("probe");
    std::fs::write(&c, src).expect("write probe.c");
    let out = Command::new("cc")
        .arg("-Wall")
        .arg("-Werror")
        .arg("-I")
        .arg(bpf_dir())
        .arg(format!(
            "-I/usr/include/{}-linux-gnu",
            std::env::consts::ARCH
        ))
        .arg("-o")
        .arg(&exe)
        .arg(&c)
        .output()
        .expect("run cc (install gcc)");
    assert!(
        out.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("run probe");
    assert!(run.status.success());
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(run.stdout)
        .expect("utf8")
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').expect("name value");
            (k.to_string(), v.parse().expect("number"))
        })
        .collect()
}

/// `size_of` a field, without a value of its struct (xw_tables is 4 MiB).
fn size_of_field<T, F>(_: impl Fn(&T) -> &F) -> u64 {
    size_of::<F>() as u64
}

/// Size of a field of struct `$t`.
macro_rules! field_size {
    ($t:ty, $f:ident) => {
        size_of_field(|v: &$t| &v.$f)
    };
}

/// The Rust view: the same keys as the C probe prints.
fn rust_view() -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    macro_rules! st {
        ($t:ident { $($f:ident),* }) => {{
            m.insert(format!("sizeof.{}", stringify!($t)), size_of::<$t>() as u64);
            $(
                m.insert(format!("offsetof.{}.{}", stringify!($t), stringify!($f)), offset_of!($t, $f) as u64);
                m.insert(format!("sizeof.{}.{}", stringify!($t), stringify!($f)), field_size!($t, $f));
            )*
        }};
    }
    st!(xw_class {
        ncand,
        flags,
        first,
        cand,
        bits
    });
    st!(xw_direct {
        key_mask,
        key_want,
        port
    });
    st!(xw_first { d, action, slot });
    st!(xw_lpm4 { prefixlen, addr });
    st!(xw_node4 { c });
    st!(xw_lone4 {
        mask,
        want,
        inside,
        outside
    });
    st!(xw_tables {
        gen,
        proto,
        sport,
        dport,
        tcpflags,
        icmp,
        family,
        vlan,
        frag,
        src4_dir,
        dst4_dir,
        src4_lens,
        dst4_lens,
        src6_dir,
        dst6_dir
    });
    st!(xw_lpm6 {
        prefixlen,
        gen,
        addr
    });
    st!(xw_rule {
        action,
        flags,
        slot,
        direct,
        d,
        snaplen,
        sample,
        every_ns,
        rl_pps,
        rl_cap,
        rl_fill_ns,
        name,
        pad
    });
    st!(xw_span { lo, span });
    st!(xw_actstat {
        limited,
        limited_bytes,
        redirect_err,
        redirect_err_bytes
    });
    st!(xw_rl_key { rule, family, addr });
    st!(xw_counter { packets, bytes });
    st!(xw_info {
        magic,
        pid,
        loaded_unix_ns,
        delivered,
        mode,
        transport,
        default_action,
        malformed_action,
        nrules,
        ifindex,
        config
    });
    st!(xw_trace {
        rule,
        action,
        malformed,
        flags
    });
    st!(xw_event {
        ts_ns,
        ifindex,
        rx_queue,
        cpu,
        rule,
        verdict,
        wire_len,
        cap_len,
        kind
    });
    st!(xw_wake { last_ns, pending });
    st!(xw_tap {
        enabled,
        snaplen,
        transport,
        flags,
        expires_ns
    });
    m
}

#[test]
fn struct_layouts_agree() {
    let c = c_view();
    let rust = rust_view();
    // The field lists of STRUCTS and of rust_view() must be the same.
    let c_layout: BTreeMap<_, _> = c.iter().filter(|(k, _)| k.contains('.')).collect();
    let r_layout: BTreeMap<_, _> = rust.iter().collect();
    assert_eq!(
        c_layout, r_layout,
        "C (left) and Rust (right) struct layouts differ"
    );
    // No implicit padding: fields tile each struct exactly (abi.h promises it,
    // and `Pod` relies on it).
    for (s, fields) in STRUCTS {
        let sum: u64 = fields.iter().map(|f| c[&format!("sizeof.{s}.{f}")]).sum();
        assert_eq!(sum, c[&format!("sizeof.{s}")], "struct {s} has padding");
    }
}

#[test]
fn every_struct_field_is_probed() {
    // Guards STRUCTS against a field added to abi.h but not to this test.
    let text = std::fs::read_to_string(bpf_dir().join("abi.h")).expect("read abi.h");
    for (s, fields) in STRUCTS {
        let start = text
            .find(&format!("struct {s} {{"))
            .unwrap_or_else(|| panic!("struct {s} in abi.h"));
        let body = &text[start..start + text[start..].find("};").expect("end of struct")];
        let declared = body
            .lines()
            .skip(1)
            .filter(|l| {
                l.trim_start().starts_with("__")
                    || l.trim_start().starts_with("char")
                    || l.trim_start().starts_with("struct ")
            })
            .count();
        assert_eq!(
            declared,
            fields.len(),
            "struct {s}: abi.h declares {declared} fields, test probes {}",
            fields.len()
        );
    }
    // And every #define and enumerator is printed by the probe.
    for name in text
        .lines()
        .filter_map(|l| {
            l.trim_start()
                .strip_prefix("#define ")
                .or_else(|| l.trim_start().strip_prefix("XW_").map(|_| l.trim_start()))
        })
        .filter_map(|l| l.split([' ', '\t', '(', ',', '=']).next())
        .filter(|n| n.starts_with("XW_") && *n != "XDPWALL_ABI_H")
    {
        assert!(
            NAMES.contains(&name),
            "{name} (abi.h) is not checked by this test"
        );
    }
    let n_structs = text.matches("\nstruct xw_").count();
    assert_eq!(
        n_structs,
        STRUCTS.len(),
        "abi.h has a struct the test does not probe"
    );
}

#[test]
fn constants_agree() {
    let c = c_view();
    let d = |n: &str| *c.get(n).unwrap_or_else(|| panic!("{n} not printed"));
    let ex: &[(&str, u64)] = &[
        ("XW_MAX_RULES", abi::MAX_RULES as u64),
        ("XW_MAX_RULES", xdpwall_rules::MAX_RULES as u64),
        ("XW_BITMAP_WORDS", abi::BITMAP_WORDS as u64),
        ("XW_MAX_CANDS", abi::MAX_CANDS as u64),
        ("XW_CAND_COUNT", u64::from(abi::CAND_COUNT)),
        ("XW_CAND_DIRECT", u64::from(abi::CAND_DIRECT)),
        ("XW_KEY_PROTO", u64::from(abi::KEY_PROTO)),
        ("XW_KEY_TCPF", u64::from(abi::KEY_TCPF)),
        ("XW_KEY_ICMP", u64::from(abi::KEY_ICMP)),
        ("XW_KEY_FAMILY", u64::from(abi::KEY_FAMILY)),
        ("XW_KEY_FRAG", u64::from(abi::KEY_FRAG)),
        ("XW_CLASS_OVERFLOW", u64::from(abi::CLASS_OVERFLOW)),
        ("XW_ID_OVERFLOW", u64::from(abi::ID_OVERFLOW)),
        ("XW_ID_TERMINALS", u64::from(abi::ID_TERMINALS)),
        ("XW_ID_COUNTS", u64::from(abi::ID_COUNTS)),
        ("XW_ID_TRIE", u64::from(abi::ID_TRIE)),
        ("XW_ID_NODE", u64::from(abi::ID_NODE)),
        ("XW_ID_LONE", u64::from(abi::ID_LONE)),
        ("XW_LONE_MASK", u64::from(abi::LONE_MASK)),
        ("XW_NODE_FANOUT", abi::NODE_FANOUT as u64),
        ("XW_LONG4_MIN", u64::from(abi::LONG4_MIN)),
        ("XW_GEN_SHIFT", u64::from(abi::GEN_SHIFT)),
        ("XW_DIR_BITS", u64::from(abi::DIR_BITS)),
        ("XW_DIR_ENTRIES", abi::DIR_ENTRIES as u64),
        ("XW_ID_MASK", u64::from(abi::ID_MASK)),
        ("XW_PORT_NONE", abi::PORT_NONE as u64),
        ("XW_PORT_ENTRIES", abi::PORT_ENTRIES as u64),
        ("XW_PROTO_NONE", abi::PROTO_NONE as u64),
        ("XW_PROTO_ENTRIES", abi::PROTO_ENTRIES as u64),
        ("XW_TCPF_NONE", abi::TCPF_NONE as u64),
        ("XW_TCPF_ENTRIES", abi::TCPF_ENTRIES as u64),
        ("XW_ICMP_NONE", abi::ICMP_NONE as u64),
        ("XW_ICMP_ENTRIES", abi::ICMP_ENTRIES as u64),
        ("XW_FAMILY_NONE", abi::FAMILY_NONE as u64),
        ("XW_FAMILY_IPV4", abi::FAMILY_IPV4 as u64),
        ("XW_FAMILY_IPV6", abi::FAMILY_IPV6 as u64),
        ("XW_FAMILY_ENTRIES", abi::FAMILY_ENTRIES as u64),
        ("XW_VLAN_NONE", abi::VLAN_NONE as u64),
        ("XW_VLAN_ENTRIES", abi::VLAN_ENTRIES as u64),
        ("XW_FRAG_NONE", abi::FRAG_NONE as u64),
        ("XW_FRAG_FIRST", abi::FRAG_FIRST as u64),
        ("XW_FRAG_NON_FIRST", abi::FRAG_NON_FIRST as u64),
        ("XW_FRAG_NOT_IP", abi::FRAG_NOT_IP as u64),
        ("XW_FRAG_ENTRIES", abi::FRAG_ENTRIES as u64),
        ("XW_ACT_PASS", u64::from(abi::ACT_PASS)),
        ("XW_ACT_DROP", u64::from(abi::ACT_DROP)),
        ("XW_ACT_COUNT", u64::from(abi::ACT_COUNT)),
        ("XW_ACT_REDIRECT", u64::from(abi::ACT_REDIRECT)),
        ("XW_ACT_RATE_LIMIT", u64::from(abi::ACT_RATE_LIMIT)),
        ("XW_RULE_BY_SRC", u64::from(abi::RULE_BY_SRC)),
        ("XW_RL_TOKEN", abi::RL_TOKEN),
        ("XW_RL_MAX_PPS", abi::RL_MAX_PPS),
        ("XW_RL_MAX_BURST", abi::RL_MAX_BURST),
        ("XW_TRACE_LIMITED", u64::from(abi::TRACE_LIMITED)),
        ("XW_TRACE_REDIRECT_ERR", u64::from(abi::TRACE_REDIRECT_ERR)),
        ("XW_MAL_MAX", abi::MAL_MAX as u64),
        // Field order (`enum xw_field` vs compile::Field, bit i of used_fields).
        ("XW_F_SRC", Field::Src as u64),
        ("XW_F_DST", Field::Dst as u64),
        ("XW_F_PROTO", Field::Proto as u64),
        ("XW_F_SPORT", Field::Sport as u64),
        ("XW_F_DPORT", Field::Dport as u64),
        ("XW_F_TCPFLAGS", Field::TcpFlags as u64),
        ("XW_F_ICMP", Field::Icmp as u64),
        ("XW_F_FAMILY", Field::Family as u64),
        ("XW_F_VLAN", Field::Vlan as u64),
        ("XW_F_FRAG", Field::Frag as u64),
        ("XW_F_MAX", Field::ALL.len() as u64),
        // Array sizes of the generated structs follow the defines.
        ("XW_MAX_CANDS", xw_class::default().cand.len() as u64),
        ("XW_BITMAP_WORDS", xw_class::default().bits.len() as u64),
        ("XW_NAME_LEN", xw_rule::default().name.len() as u64),
        ("XW_NAME_LEN", abi::NAME_LEN as u64),
        ("XW_PATH_LEN", xw_info::default().config.len() as u64),
        // The rule-id mask covers every id and excludes the count flag.
        ("XW_CAND_ID_MASK", (abi::MAX_RULES - 1) as u64),
        ("XW_CAND_ID_MASK", u64::from(abi::CAND_ID_MASK)),
        ("XW_CAND_CHECK_SHIFT", u64::from(abi::CAND_CHECK_SHIFT)),
        ("XW_COUNTER_SLOTS", abi::COUNTER_SLOTS as u64),
        ("XW_STAT_DEFAULT", u64::from(abi::STAT_DEFAULT)),
        ("XW_STAT_ENTRIES", abi::COUNTER_SLOTS as u64 + 1),
        ("XW_NO_RULE", u64::from(u32::MAX)),
        ("XW_INFO_MAGIC", u64::from_be_bytes(*b"xwall001")),
        ("XW_RULE_LOG", u64::from(abi::RULE_LOG)),
        ("XW_RULE_SAMPLE", u64::from(abi::RULE_SAMPLE)),
        ("XW_MAX_SNAPLEN", u64::from(abi::MAX_SNAPLEN)),
        ("XW_EV_LOG", u64::from(abi::EV_LOG)),
        ("XW_EV_SAMPLE", u64::from(abi::EV_SAMPLE)),
        ("XW_TRANSPORT_RINGBUF", u64::from(abi::TRANSPORT_RINGBUF)),
        ("XW_TRANSPORT_PERFBUF", u64::from(abi::TRANSPORT_PERFBUF)),
        ("XW_WAKE_EVERY", u64::from(abi::WAKE_EVERY)),
        ("XW_WAKE_BATCH", u64::from(abi::WAKE_BATCH)),
        ("XW_WAKE_ADAPTIVE", u64::from(abi::WAKE_ADAPTIVE)),
        ("XW_EVS_PRODUCED", u64::from(abi::EVS_PRODUCED)),
        ("XW_EVS_LOST", u64::from(abi::EVS_LOST)),
        ("XW_EVS_WAKEUPS", u64::from(abi::EVS_WAKEUPS)),
        ("XW_EVS_MAX", u64::from(abi::EVS_MAX)),
        ("XW_EVS_TAP_PRODUCED", u64::from(abi::EVS_TAP_PRODUCED)),
        ("XW_EVS_TAP_LOST", u64::from(abi::EVS_TAP_LOST)),
        ("XW_EV_CAPTURE", u64::from(abi::EV_CAPTURE)),
        ("XW_TAP_RING_SIZE", u64::from(abi::TAP_RING_SIZE)),
        ("XW_TAP_DROPS", u64::from(abi::TAP_DROPS)),
        ("XW_XERR_EXC_INVALID", u64::from(abi::XERR_EXC_INVALID)),
        ("XW_XERR_REDIRECT", u64::from(abi::XERR_REDIRECT)),
        ("XW_XERR_REDIRECT_MAP", u64::from(abi::XERR_REDIRECT_MAP)),
        ("XW_XERR_MAX", u64::from(abi::XERR_MAX)),
        // Exceptions by action fill the slots below the invalid one.
        (
            "XW_XERR_EXC_INVALID",
            (xdpwall_dataplane::xdperr::EXCEPTION_ACTIONS.len() - 1) as u64,
        ),
    ];
    let mut bad = Vec::new();
    for &(name, want) in ex {
        if d(name) != want {
            bad.push(format!("{name}: C {} vs Rust {want}", d(name)));
        }
    }
    assert!(
        bad.is_empty(),
        "ABI constants disagree:\n{}",
        bad.join("\n")
    );
    assert_eq!(
        u64::from(abi::CAND_COUNT | abi::CAND_DIRECT) & d("XW_CAND_ID_MASK"),
        0,
        "candidate flags overlap rule ids"
    );
    assert_eq!(abi::CAND_COUNT & abi::CAND_DIRECT, 0);
    let hints = d("XW_ID_OVERFLOW") | d("XW_ID_TERMINALS") | d("XW_ID_COUNTS");
    assert_eq!(
        hints & d("XW_ID_MASK"),
        0,
        "class-id hint bits overlap the id"
    );
    // Field bits of compile::Field are the C bit numbers.
    for f in Field::ALL {
        assert_eq!(f.bit(), 1 << (f as u32));
    }
}

#[test]
fn malformed_reason_names_follow_the_enum() {
    let c = c_view();
    let names = [
        "XW_MAL_TRUNCATED",
        "XW_MAL_BAD_HEADER",
        "XW_MAL_EXT_TOO_DEEP",
        "XW_MAL_VLAN_TOO_DEEP",
    ];
    // Values as the C compiler sees them, ...
    for (i, n) in names.iter().enumerate() {
        assert_eq!(c[*n], i as u64, "{n}");
    }
    // ... and every reason enumerator of abi.h, in order, names the Rust string.
    let text = std::fs::read_to_string(bpf_dir().join("abi.h")).expect("read abi.h");
    let start = text
        .find("enum xw_malformed_reason {")
        .expect("enum xw_malformed_reason");
    let body = &text[start..start + text[start..].find("};").expect("end of enum")];
    let c_names: Vec<String> = body
        .lines()
        .filter_map(|l| l.trim().strip_prefix("XW_MAL_"))
        .map(|l| l.split([' ', '=', ',']).next().unwrap_or("").to_lowercase())
        .filter(|n| n != "max")
        .collect();
    assert_eq!(c_names, abi::MALFORMED_REASONS.to_vec());
    assert!(abi::MALFORMED_REASONS.len() <= abi::MAL_MAX);
    // The data plane masks reasons with MAL_MAX - 1: it must be a power of two.
    assert!(abi::MAL_MAX.is_power_of_two());
    assert_eq!(c["XW_BITMAP_WORDS"] * 64, c["XW_MAX_RULES"]);
    assert!(
        c["XW_BITMAP_WORDS"].is_power_of_two(),
        "match_word masks the word index"
    );
}

/// The event header size user space sizes ring records with is the
/// program's `struct xw_event`, and the largest ring size class is the
/// largest capture.
#[test]
fn event_header_and_ring_classes_agree() {
    assert_eq!(abi::EVENT_HEADER as usize, size_of::<xw_event>());
    assert_eq!(abi::RING_CLASSES.last().copied(), Some(abi::MAX_SNAPLEN));
    assert!(abi::RING_CLASSES.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(abi::ring_record_bytes(0), abi::EVENT_HEADER);
    assert_eq!(abi::ring_record_bytes(17), abi::EVENT_HEADER + 32);
    assert_eq!(
        abi::ring_record_bytes(abi::MAX_SNAPLEN + 1),
        abi::EVENT_HEADER + abi::MAX_SNAPLEN
    );
}
