//! Unprivileged: `check`, config errors with `path:line:col`, usage errors,
//! and `--help` examples.

use crate::fixtures::{config_dir, xdpwall, TempDir, LAB_RULES};

#[test]
fn check_valid_config_prints_rule_table() {
    let (dir, cfg) = config_dir("check-ok", LAB_RULES);
    let out = xdpwall(&["check", cfg.to_str().expect("utf-8 path")]);
    out.assert_code(0);
    let header = out.stdout.lines().next().unwrap_or_default();
    for col in ["NAME", "ACTION", "MATCH"] {
        assert!(
            header.contains(col),
            "table header lacks {col}\n{}",
            out.describe()
        );
    }
    // One row per rule, in file order, with its action.
    let rows: Vec<&str> = out.stdout.lines().skip(1).take(4).collect();
    let want = [
        ("count-icmp", "count"),
        ("ssh-drop", "drop"),
        ("dns", "pass"),
        ("udp-high-drop", "drop"),
    ];
    for (i, (row, (name, action))) in rows.iter().zip(want).enumerate() {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells.first().copied(),
            Some(i.to_string().as_str()),
            "row {i}: {row}"
        );
        assert_eq!(cells.get(1).copied(), Some(name), "row {i}: {row}");
        assert_eq!(cells.get(2).copied(), Some(action), "row {i}: {row}");
    }
    assert!(
        rows[1].contains("22") && rows[3].contains("10000-20000"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("ok: 4 rules"), "{}", out.describe());
    drop(dir);
}

#[test]
fn check_example_config_from_the_repo() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/demo.toml");
    let out = xdpwall(&["check", demo]);
    out.assert_code(0);
    for name in [
        "drop-blocklist",
        "count-icmp",
        "ssh-drop",
        "web",
        "dns",
        "udp-high-drop",
        "v6-no-ping",
    ] {
        assert!(
            out.stdout.contains(name),
            "{name} missing\n{}",
            out.describe()
        );
    }
}

/// One config error case: files to write, the file whose location is
/// reported, `line:col`, and a fragment of the message.
struct Case {
    what: &'static str,
    config: &'static str,
    set_file: Option<(&'static str, &'static str)>,
    reported_in: &'static str,
    line_col: &'static str,
    message: &'static str,
}

const CASES: &[Case] = &[
    Case {
        what: "unknown key",
        config: "[xdp]\ndefault = \"pass\"\nbogus = 1\n",
        set_file: None,
        reported_in: "rules.toml",
        line_col: "3:1",
        message: "unknown key `bogus`",
    },
    Case {
        what: "bad CIDR",
        config: "[[rule]]\nname = \"x\"\nsrc = \"10.0.0.300/8\"\naction = \"drop\"\n",
        set_file: None,
        reported_in: "rules.toml",
        line_col: "3:7",
        message: "is not a CIDR",
    },
    Case {
        what: "duplicate name",
        config: "[[rule]]\nname = \"x\"\naction = \"drop\"\n\n[[rule]]\nname = \"x\"\naction = \"pass\"\n",
        set_file: None,
        reported_in: "rules.toml",
        line_col: "6:8",
        message: "duplicate rule name `x`",
    },
    Case {
        what: "unknown set",
        config: "[sets]\nadmins = [\"192.0.2.10\"]\n\n[[rule]]\nname = \"x\"\nsrc = \"@nope\"\naction = \"drop\"\n",
        set_file: None,
        reported_in: "rules.toml",
        line_col: "6:7",
        message: "unknown set `@nope`",
    },
    Case {
        what: "port out of range",
        config: "[[rule]]\nname = \"x\"\nproto = \"tcp\"\ndport = 70000\naction = \"drop\"\n",
        set_file: None,
        reported_in: "rules.toml",
        line_col: "4:9",
        message: "70000 is out of range",
    },
    Case {
        what: "inverted range",
        config: "[[rule]]\nname = \"x\"\nproto = \"udp\"\ndport = \"90-80\"\naction = \"drop\"\n",
        set_file: None,
        reported_in: "rules.toml",
        line_col: "4:9",
        message: "range 90-80 is inverted",
    },
    Case {
        what: "bad set-file line",
        config: "[sets]\nbl = { file = \"block.txt\" }\n\n[[rule]]\nname = \"x\"\nsrc = \"@bl\"\naction = \"drop\"\n",
        set_file: Some(("block.txt", "# blocklist\n10.0.0.0/8\n\n2001:db8::/32\nnot-a-cidr\n")),
        reported_in: "block.txt",
        line_col: "5:1",
        message: "`not-a-cidr` is not a CIDR",
    },
    Case {
        what: "unreadable set file",
        config: "[sets]\nbl = { file = \"missing.txt\" }\n\n[[rule]]\nname = \"x\"\nsrc = \"@bl\"\naction = \"drop\"\n",
        set_file: None,
        reported_in: "rules.toml",
        line_col: "2:",
        message: "cannot read set file",
    },
    Case {
        what: "ports with a protocol that has none",
        config: "[[rule]]\nname = \"x\"\nproto = \"icmp\"\ndport = 5\naction = \"drop\"\n",
        set_file: None,
        reported_in: "rules.toml",
        line_col: "",
        message: "proto icmp has no ports",
    },
];

#[test]
fn config_errors_exit_2_with_path_line_col() {
    let mut failures = Vec::new();
    for c in CASES {
        let dir = TempDir::new("check-err");
        let cfg = dir.write("rules.toml", c.config);
        if let Some((name, body)) = c.set_file {
            dir.write(name, body);
        }
        let out = xdpwall(&["check", cfg.to_str().expect("utf-8 path")]);
        let reported = dir.path().join(c.reported_in);
        let prefix = format!("{}:{}", reported.display(), c.line_col);
        let first = out.stderr.lines().next().unwrap_or_default().to_string();
        // `path:line:col: message`
        let located = first.starts_with(&prefix) && {
            let rest = &first[reported.display().to_string().len() + 1..];
            let mut p = rest.splitn(3, ':');
            let line_ok = p.next().is_some_and(|l| l.parse::<u32>().is_ok());
            let col_ok = p.next().is_some_and(|c| c.parse::<u32>().is_ok());
            line_ok && col_ok && p.next().is_some_and(|m| m.starts_with(' '))
        };
        if out.code() != Some(2) || !located || !first.contains(c.message) || !out.stdout.is_empty()
        {
            failures.push(format!(
                "{}: expected exit 2 and `{prefix}…: …{}…`\n{}",
                c.what,
                c.message,
                out.describe()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_error_is_reported_and_nothing_else_printed() {
    // Two independent errors: both are reported, each with its location.
    let (dir, cfg) = config_dir(
        "check-multi",
        "[[rule]]\nname = \"x\"\naction = \"drop\"\nbogus = 1\n\n[[rule]]\nname = \"x\"\naction = \"pass\"\n",
    );
    let out = xdpwall(&["check", cfg.to_str().expect("utf-8 path")]);
    out.assert_code(2);
    let p = cfg.display().to_string();
    assert!(
        out.stderr
            .contains(&format!("{p}:4:1: unknown key `bogus`")),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains(&format!("{p}:7:")) && out.stderr.contains("duplicate rule name"),
        "{}",
        out.describe()
    );
    drop(dir);
}

#[test]
fn usage_errors_exit_2() {
    // Missing argument.
    xdpwall(&["check"]).assert_code(2);
    // Unknown flag.
    let out = xdpwall(&["stats", "--bogus"]);
    out.assert_code(2);
    assert!(out.stderr.contains("--bogus"), "{}", out.describe());
    // Unreadable config.
    let dir = TempDir::new("check-missing");
    let missing = dir.path().join("nope.toml");
    let out = xdpwall(&["check", missing.to_str().expect("utf-8 path")]);
    out.assert_code(2);
    assert!(out.stderr.contains("nope.toml"), "{}", out.describe());
    // `run` without an interface anywhere: a usage error before anything is loaded.
    let (_d, cfg) = config_dir("run-noiface", "[[rule]]\nname = \"x\"\naction = \"drop\"\n");
    let out = xdpwall(&["run", cfg.to_str().expect("utf-8 path")]);
    out.assert_code(2);
    assert!(out.stderr.contains("--iface"), "{}", out.describe());
    // `run` with a broken config: exit 2, the location, nothing attached.
    let (_d, cfg) = config_dir("run-bad", "[xdp]\nbogus = 1\n");
    let out = xdpwall(&["run", cfg.to_str().expect("utf-8 path"), "--iface", "lo"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains(&format!("{}:2:1:", cfg.display())),
        "{}",
        out.describe()
    );
}

fn help_shows_example(sub: &str) {
    let out = xdpwall(&[sub, "--help"]);
    out.assert_code(0);
    let idx = out.stdout.find("Example").unwrap_or_else(|| {
        panic!(
            "`xdpwall {sub} --help` shows no example\n{}",
            out.describe()
        )
    });
    let after = &out.stdout[idx..];
    assert!(
        after
            .lines()
            .skip(1)
            .any(|l| l.contains(&format!("xdpwall {sub}"))),
        "`xdpwall {sub} --help`: the example does not run `xdpwall {sub}`\n{}",
        out.stdout
    );
}

#[test]
fn help_of_each_subcommand_shows_an_example() {
    for sub in [
        "check",
        "run",
        "stats",
        "replay",
        "detach",
        "completions",
        "man",
    ] {
        help_shows_example(sub);
    }
    // The top-level help lists examples for all of them.
    let out = xdpwall(&["--help"]);
    out.assert_code(0);
    for sub in ["demo", "check", "run", "stats", "replay", "detach"] {
        assert!(
            out.stdout.contains(&format!("xdpwall {sub}")),
            "{sub}\n{}",
            out.stdout
        );
    }
}

#[test]
fn help_of_demo_shows_an_example() {
    help_shows_example("demo");
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let out = xdpwall(&["completions", shell]);
        out.assert_code(0);
        for sub in ["check", "run", "stats", "replay", "detach"] {
            assert!(
                out.stdout.contains(sub),
                "{shell} completions lack {sub}\n{}",
                out.describe()
            );
        }
    }
    let out = xdpwall(&["man"]);
    out.assert_code(0);
    assert!(
        out.stdout.starts_with(".ie") || out.stdout.contains(".TH xdpwall 1"),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout.contains("replay"),
        "the man page lists the subcommands"
    );
}

/// Run as root, `check` warns (without failing) about a config or set file
/// others can write, and about a config all users can read.
#[test]
fn check_as_root_warns_about_files_others_can_change() {
    use std::os::unix::fs::PermissionsExt;
    if !xdpwall_lab::require_root("check_as_root_warns_about_files_others_can_change") {
        return;
    }
    let set_toml = "[sets]\nb = { file = \"block.txt\" }\n\n[[rule]]\nname = \"b\"\nsrc = \"@b\"\naction = \"drop\"\n";
    let (dir, cfg) = config_dir("check-perms", set_toml);
    let set = dir.write("block.txt", "198.51.100.0/24\n");
    let mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
    };
    mode(dir.path(), 0o755);
    mode(&cfg, 0o600);
    mode(&set, 0o644);
    let out = xdpwall(&["check", cfg.to_str().expect("utf-8 path")]);
    out.assert_code(0);
    assert!(!out.stderr.contains("warning:"), "{}", out.describe());

    mode(&set, 0o666);
    mode(&cfg, 0o644);
    let out = xdpwall(&["check", cfg.to_str().expect("utf-8 path")]);
    out.assert_code(0);
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        warnings,
        vec![
            format!(
                "xdpwall: warning: {} is readable by all users (mode 0644); if the rules are sensitive, \
                 chmod o-r {}",
                cfg.display(),
                cfg.display()
            ),
            format!(
                "xdpwall: warning: {} is writable by its group and all users (mode 0666); they can \
                 change the firewall (chmod go-w {})",
                set.display(),
                set.display()
            ),
        ],
        "{}",
        out.describe()
    );
}
