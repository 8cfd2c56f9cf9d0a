//! Loading the XDP program and filling its maps from compiled rules.

use std::mem::MaybeUninit;
use std::sync::Mutex;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use std::os::fd::AsFd;

use libbpf_rs::{MapCore, MapFlags, MapHandle, PrintLevel};
use xdpwall_rules::compile::{abi, hashed4, Compiled, Node4, Nodes4};
use xdpwall_rules::Verdict;

use crate::error::{Error, Result};
use crate::fold;
use crate::instance::{Instance, Maps};
use crate::pod::{bytes_of_slice, Pod};
use crate::skel::{types, XdpwallSkelBuilder};
use crate::tables::{Table, Tables};

/// Options that change the loaded program itself (its `.rodata`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Record each verdict in `xw_trace` (for replay and tests).
    pub trace: bool,
    /// For test runs only (replay): a redirect target missing from this
    /// network namespace is stood in for by the loopback interface, so the
    /// verdict still reads `redirect`. BPF_PROG_TEST_RUN transmits nothing.
    pub stand_in_redirects: bool,
    /// Read every frame's length with the `bpf_xdp_get_buff_len` helper,
    /// as the program does on kernels before 6.2 (for tests of that way).
    pub helper_len: bool,
    /// Parse every frame with the general parser, as the program does for
    /// rule sets that log or sample (for tests of that way).
    pub general_parser: bool,
    /// Load the program as compiled, without folding its frozen
    /// configuration into its instructions (see `fold`): for tests that
    /// compare the two, and for measuring what the folding saves.
    pub no_fold: bool,
}

/// libbpf's log of the current load, so a verifier rejection can be shown.
static LOG: Mutex<String> = Mutex::new(String::new());

fn capture_log(_level: PrintLevel, msg: String) {
    if let Ok(mut log) = LOG.lock() {
        // Keep the tail only: verifier logs can be megabytes.
        if log.len() > 64 * 1024 {
            let cut = log.len() - 32 * 1024;
            let cut = (cut..log.len())
                .find(|&i| log.is_char_boundary(i))
                .unwrap_or(0);
            log.drain(..cut);
        }
        log.push_str(&msg);
    }
}

/// libbpf's log of the current load, as far as it is kept.
fn log_text() -> String {
    LOG.lock().map(|l| l.clone()).unwrap_or_default()
}

/// The tail of libbpf's log of the current load, for an error message.
pub(crate) fn log_tail() -> String {
    tail_of(&log_text())
}

/// The last lines of `log`, headed, for an error message (empty if none).
fn tail_of(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    if tail.is_empty() {
        String::new()
    } else {
        format!("\n--- libbpf/verifier log (tail) ---\n{tail}")
    }
}

/// The kernel's "not supported" errno, which libc does not name. A load
/// gets it when the verifier accepted the program and the JIT then failed.
const ENOTSUPP: i32 = 524;

/// The kernel's errno behind a libbpf error. libbpf-rs keeps its io::Error
/// private, so it is read back from the message's " (os error N)".
fn os_errno(e: &libbpf_rs::Error) -> Option<i32> {
    let text = format!("{e:#}");
    let at = text.rfind("(os error ")?;
    text[at + "(os error ".len()..]
        .split(')')
        .next()?
        .parse()
        .ok()
}

/// What a refused load means and what to do, where the kernel's own log
/// says nothing useful: the verifier's limit (E2BIG with its "BPF program
/// is too large"; a map too large is E2BIG too, and its log says which) and
/// a JIT failure (ENOTSUPP, met on this project's machine by one random
/// rule set). `log` is libbpf's log of the load, the verifier's included.
fn load_hint(e: &libbpf_rs::Error, log: &str) -> String {
    match os_errno(e) {
        Some(libc::E2BIG) if log.contains("BPF program is too large") => format!(
            "\nThe verifier gave up after {} instructions processed: this rule set's \
             shape (the fields and features it uses, not how many rules) is too rich \
             for one program. Use fewer fields or features.",
            crate::instance::VERIFIER_LIMIT
        ),
        Some(ENOTSUPP) => "\nThe verifier accepted the program but the kernel's JIT failed \
                           to compile it (`dmesg` shows \"bpf_jit: ...\"): a kernel bug that \
                           some program shapes meet. A rule set using one field or feature \
                           more or fewer makes another program; please report this rule set."
            .into(),
        _ => String::new(),
    }
}

fn verdict(v: Verdict) -> u32 {
    match v {
        Verdict::Pass => 2, // XDP_PASS
        Verdict::Drop => 1, // XDP_DROP
    }
}

/// The ring buffer's size: `[events] buffer` when it is the transport (a
/// power of two, at least a page), else one page so it costs nothing. At
/// least room for one record of the largest capture a rule asks for: a
/// record reserves its size class, and the kernel refuses a reservation
/// larger than the ring, so a 4 KiB ring with a 3,500-byte snaplen would
/// lose every event.
fn ring_size(c: &Compiled) -> usize {
    if c.events.transport == abi::TRANSPORT_RINGBUF && c.events.enabled {
        let one_record = c
            .rules
            .iter()
            .filter(|r| r.flags & (abi::RULE_LOG | abi::RULE_SAMPLE) != 0)
            .map(|r| 8 + abi::ring_record_bytes(r.snaplen) as usize)
            .max()
            .unwrap_or(0);
        usize::try_from(c.events.buffer)
            .unwrap_or(4096)
            .max(4096)
            .max(one_record)
            .next_power_of_two()
    } else {
        4096
    }
}

/// The per-source bucket table: `[xdp] rate_limit_table` entries when some
/// rule limits by source, else one (an LRU table is preallocated).
fn rl_src_size(c: &Compiled) -> usize {
    if c.rules.iter().any(|r| r.flags & abi::RULE_BY_SRC != 0) {
        c.rate_limit_table as usize
    } else {
        1
    }
}

fn entries(n: usize) -> u32 {
    u32::try_from(n.max(1)).unwrap_or(u32::MAX)
}

/// Loads the program for `c` and fills its tables. Not attached yet.
/// Redirect targets are resolved in the calling thread's network namespace.
///
/// # Errors
/// A redirect target does not exist; the kernel refuses the program or a
/// map (the error carries the log).
pub fn load(c: &Compiled, opts: LoadOptions) -> Result<Instance> {
    load_inner(c, opts, None, None)
}

/// Loads the program for `c` as the successor of `prev` (a reload, or a
/// restarted `run` taking over): the new program shares `prev`'s counter
/// maps, and each rule keeps the counter slot its name had, so not one
/// packet counted by either program is lost across the swap. Not attached.
///
/// # Errors
/// `prev` comes from an incompatible xdpwall version
/// ([`Error::Incompatible`]: load with [`load`] instead), or as [`load`].
pub fn load_next(c: &Compiled, opts: LoadOptions, prev: &Instance) -> Result<Instance> {
    crate::slots::check_compatible(prev)?;
    load_inner(c, opts, Some(prev), None)
}

/// Loads like [`load`], but the default action returns the raw XDP action
/// `xdp` (e.g. 0, `XDP_ABORTED`, or 4, `XDP_REDIRECT` without a target) —
/// for tests that make the kernel report XDP errors for this program. No
/// config can ask for this.
///
/// # Errors
/// As [`load`].
pub fn load_with_raw_default(c: &Compiled, opts: LoadOptions, xdp: u32) -> Result<Instance> {
    load_inner(c, opts, None, Some(xdp))
}

/// Routes libbpf's messages into the log shown when a load fails.
pub(crate) fn start_log() {
    libbpf_rs::set_print(Some((PrintLevel::Debug, capture_log)));
    if let Ok(mut log) = LOG.lock() {
        log.clear();
    }
}

fn load_inner(
    c: &Compiled,
    opts: LoadOptions,
    prev: Option<&Instance>,
    raw_default: Option<u32>,
) -> Result<Instance> {
    // Before anything is loaded: a missing target changes nothing.
    let targets = redirect_targets(c, opts.stand_in_redirects)?;
    start_log();
    let mut storage = MaybeUninit::uninit();
    let mut open = XdpwallSkelBuilder::default()
        .open(&mut storage)
        .map_err(Error::Open)?;

    if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
        ro.used_fields = c.used_fields;
        ro.index_fields = c.index_fields;
        ro.nwords = c.nwords;
        ro.tail_mask = c.tail_mask;
        ro.src_nonip_class = c.src_nonip;
        ro.dst_nonip_class = c.dst_nonip;
        ro.always_class = c.always_class;
        ro.count_class = c.count_class;
        ro.has_count_rules = u32::from(c.has_count_rules);
        ro.default_verdict = raw_default.unwrap_or(verdict(c.default));
        ro.malformed_verdict = verdict(c.malformed);
        ro.trace_enabled = u32::from(opts.trace);
        ro.has_events = u32::from(c.events.enabled);
        // The fast path's two ways cost the verifier a check of the
        // classifier each. With events that once took the richest rule
        // sets to 997,881 of its 1,000,000, so they went without it; since
        // session 12 (the walks' candidate check a global function, the
        // context's alignment kept) they take 387,889, and every rule set
        // gets it (the data-plane budget test).
        ro.fast_parse = u32::from(!opts.general_parser);
        ro.has_kern_ctx = u32::from(!opts.helper_len && crate::kernel::has_kern_ctx());
        ro.transport = c.events.transport;
        ro.wakeup_mode = c.events.wakeup_mode;
        ro.wakeup_batch = c.events.wakeup_batch;
        // Adaptive wake-ups hurry when a quarter of the ring is unread.
        ro.wakeup_watermark = (ring_size(c) / 4) as u64;
    }
    let m = &mut open.maps;
    if let Some(prev) = prev {
        for (map, fd, name) in [
            (&mut m.xw_stats, prev.maps.stats.as_fd(), "xw_stats"),
            (
                &mut m.xw_malformed,
                prev.maps.malformed.as_fd(),
                "xw_malformed",
            ),
            (&mut m.xw_evstats, prev.maps.evstats.as_fd(), "xw_evstats"),
            (
                &mut m.xw_actstats,
                prev.maps.actstats.as_fd(),
                "xw_actstats",
            ),
            (
                &mut m.xw_xdp_errors,
                prev.maps.xdp_errors.as_fd(),
                "xw_xdp_errors",
            ),
        ] {
            map.reuse_fd(fd).map_err(|source| Error::Map {
                op: "share",
                map: name,
                source,
            })?;
        }
    }
    let slots = match prev {
        Some(prev) => crate::slots::assign(prev, c)?,
        None => crate::slots::fresh(c.rules.len()),
    };
    let sizes = [
        (
            &mut m.xw_src4,
            prefix_capacity(hashed4(&c.src4, &c.src4_dir).count()),
            "xw_src4",
        ),
        (
            &mut m.xw_dst4,
            prefix_capacity(hashed4(&c.dst4, &c.dst4_dir).count()),
            "xw_dst4",
        ),
        (
            &mut m.xw_src4_n24,
            2 * node_half(c.src4_nodes.n24.len()),
            "xw_src4_n24",
        ),
        (
            &mut m.xw_src4_n32,
            2 * node_half(c.src4_nodes.n32.len()),
            "xw_src4_n32",
        ),
        (
            &mut m.xw_dst4_n24,
            2 * node_half(c.dst4_nodes.n24.len()),
            "xw_dst4_n24",
        ),
        (
            &mut m.xw_dst4_n32,
            2 * node_half(c.dst4_nodes.n32.len()),
            "xw_dst4_n32",
        ),
        (
            &mut m.xw_src4_lone,
            2 * node_half(c.src4_nodes.lone.len()),
            "xw_src4_lone",
        ),
        (
            &mut m.xw_dst4_lone,
            2 * node_half(c.dst4_nodes.lone.len()),
            "xw_dst4_lone",
        ),
        (&mut m.xw_src6, prefix_capacity(c.src6.len()), "xw_src6"),
        (&mut m.xw_dst6, prefix_capacity(c.dst6.len()), "xw_dst6"),
        (&mut m.xw_classes, c.classes.len(), "xw_classes"),
        (&mut m.xw_rules, c.rules.len(), "xw_rules"),
        (&mut m.xw_ring, ring_size(c), "xw_ring"),
        (&mut m.xw_rl_rule, c.rules.len(), "xw_rl_rule"),
        (&mut m.xw_rl_src, rl_src_size(c), "xw_rl_src"),
        (&mut m.xw_redirect, c.rules.len(), "xw_redirect"),
    ];
    for (map, n, name) in sizes {
        map.set_max_entries(entries(n))
            .map_err(|source| Error::Map {
                op: "size",
                map: name,
                source,
            })?;
    }

    if !opts.no_fold {
        fold_config(open.open_object_mut())?;
    }
    let skel = open.load().map_err(|source| {
        let log = log_text();
        Error::Load {
            hint: load_hint(&source, &log),
            source,
            log: tail_of(&log),
        }
    })?;
    let inst = Instance::from_loaded(&skel)?;
    bind_unused_maps(&inst)?;
    if prev.is_some() {
        // Slots new to this generation may hold counts of an older one.
        crate::slots::zero(&inst, &slots)?;
    }
    fill(&inst.maps, c, &slots.of_rule)?;
    fill_redirects(&inst.maps, &targets)?;
    Ok(inst)
}

/// Relocates the program (libbpf's prepare step: maps created, `.rodata`
/// frozen) and folds the frozen configuration into its instructions.
fn fold_config(obj: &mut libbpf_rs::OpenObject) -> Result<fold::Folded> {
    use libbpf_rs::libbpf_sys as sys;
    use libbpf_rs::AsRawLibbpf;

    let raw = obj.as_libbpf_object().as_ptr();
    let failed = |what: &str, ret: i32| Error::Sys {
        what: format!("{what} (before loading the XDP program)"),
        source: crate::error::errno(ret),
    };
    // SAFETY: `raw` is the open object `obj` owns for this call; every
    // pointer below comes from it and is used before it returns.
    unsafe {
        let ret = sys::bpf_object__prepare(raw);
        if ret < 0 {
            // As a failed load reports it: libbpf's log says which map or
            // relocation it could not make.
            let log = log_text();
            let source = libbpf_rs::Error::from(std::io::Error::from_raw_os_error(-ret));
            return Err(Error::Load {
                hint: load_hint(&source, &log),
                source,
                log: tail_of(&log),
            });
        }
        let map = sys::bpf_object__find_map_by_name(raw, c".rodata".as_ptr());
        let prog = sys::bpf_object__find_program_by_name(raw, c"xdpwall_main".as_ptr());
        if map.is_null() || prog.is_null() {
            return Ok(fold::Folded::default());
        }
        let mut size = 0;
        let data = sys::bpf_map__initial_value(map, &mut size).cast::<u8>();
        let insns = sys::bpf_program__insns(prog);
        let n = usize::try_from(sys::bpf_program__insn_cnt(prog)).unwrap_or(0);
        let size = usize::try_from(size).unwrap_or(0);
        if data.is_null() || insns.is_null() {
            return Ok(fold::Folded::default());
        }
        let frozen = fold::Frozen {
            fd: sys::bpf_map__fd(map),
            data: std::slice::from_raw_parts(data, size),
        };
        let mut code: Vec<fold::Insn> = (0..n)
            .map(|k| std::ptr::read_unaligned(insns.add(k).cast::<fold::Insn>()))
            .collect();
        let folded = fold::fold(&mut code, &frozen);
        let ret = sys::bpf_program__set_insns(prog, code.as_mut_ptr().cast(), n as sys::size_t);
        if ret < 0 {
            return Err(failed("replace the program's instructions", ret));
        }
        Ok(folded)
    }
}

/// (rule id, ifindex) of every `redirect` rule.
fn redirect_targets(c: &Compiled, stand_in: bool) -> Result<Vec<(u32, u32)>> {
    let mut out = Vec::new();
    for (i, r) in c.rules.iter().enumerate() {
        if let Some(name) = &r.redirect {
            let found = crate::instance::ifindex(name).or_else(|e| {
                if stand_in {
                    crate::instance::ifindex("lo")
                } else {
                    Err(e)
                }
            });
            let idx = found.map_err(|_| Error::NoRedirectTarget {
                rule: r.name.clone(),
                iface: name.clone(),
            })?;
            out.push((u32::try_from(i).unwrap_or(u32::MAX), idx));
        }
    }
    Ok(out)
}

fn fill_redirects(maps: &Maps, targets: &[(u32, u32)]) -> Result<()> {
    for (rule, idx) in targets {
        maps.redirect
            .update(&rule.to_ne_bytes(), &idx.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| Error::Map {
                op: "fill",
                map: "xw_redirect",
                source,
            })?;
    }
    Ok(())
}

/// The program never reads `xw_info` (and may never reach the event maps),
/// so the kernel would not necessarily list them among the program's maps —
/// and another process finds maps only through that list. Binding keeps them
/// listed (and alive) with the program.
fn bind_unused_maps(inst: &Instance) -> Result<()> {
    use std::os::fd::AsRawFd;
    let m = &inst.maps;
    for (map, name) in [
        (&m.info, "xw_info"),
        (&m.ring, "xw_ring"),
        (&m.perf, "xw_perf"),
        (&m.evstats, "xw_evstats"),
        (&m.tap_ctl, crate::instance::TAP_MAP),
        (&m.tap_ring, "xw_tap_ring"),
        (&m.tap_perf, "xw_tap_perf"),
        (&m.xdp_errors, "xw_xdp_errors"),
    ] {
        // SAFETY: both fds are valid for the call; NULL opts are allowed.
        let ret = unsafe {
            libbpf_rs::libbpf_sys::bpf_prog_bind_map(
                inst.prog.as_raw_fd(),
                map.as_fd().as_raw_fd(),
                std::ptr::null(),
            )
        };
        if ret < 0 {
            return Err(Error::Sys {
                what: format!("bind map {name} to the program"),
                source: crate::error::errno(ret),
            });
        }
    }
    Ok(())
}

/// Nodes (or lone entries) one generation of a node array holds: what `n`
/// needs, plus room for a set change to grow in place (0 when none are
/// needed).
pub(crate) fn node_half(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        n + n / 4 + 16
    }
}

/// Where generation `gen` of a node array starts (its halves are equal).
fn node_base(map: &MapHandle, gen: u32) -> u32 {
    gen * (map.max_entries() / 2)
}

/// A directory (`offset_dir`) or /24 node (`offset_node`) with its node
/// indices moved into the generation's half of the node array (a /32
/// node holds classes only and is written as it is). Lone entries move
/// into the generation's half of theirs (`lone_off`).
fn offset_dir(dir: &[u32], off: u32, lone_off: u32) -> Vec<u32> {
    dir.iter()
        .map(|&d| {
            if d & abi::ID_TRIE == 0 || d & abi::ID_NODE == 0 {
                d
            } else if d & abi::ID_LONE != 0 {
                d + lone_off
            } else {
                d + off
            }
        })
        .collect()
}

fn offset_node(node: &Node4, off: u32) -> types::xw_node4 {
    types::xw_node4 {
        c: node.map(|e| if e & abi::ID_NODE != 0 { e + off } else { e }),
    }
}

/// Writes one field's IPv4 nodes as generation `gen`, and its directory
/// into `tables` (written after the nodes: it makes them reachable).
fn fill_dir4(
    (tables, dir_table): (&mut Tables, Table),
    [(n24_map, n24_name), (n32_map, n32_name), (lone_map, lone_name)]: [(&MapHandle, &'static str);
        3],
    dir: &[u32],
    nodes: &Nodes4,
    gen: u32,
) -> Result<()> {
    let (b24, b32) = (node_base(n24_map, gen), node_base(n32_map, gen));
    let blone = node_base(lone_map, gen);
    let n32: Vec<types::xw_node4> = nodes.n32.iter().map(|&c| types::xw_node4 { c }).collect();
    update_array_at(n32_map, n32_name, &n32, b32)?;
    let n24: Vec<types::xw_node4> = nodes.n24.iter().map(|n| offset_node(n, b32)).collect();
    update_array_at(n24_map, n24_name, &n24, b24)?;
    let lone: Vec<types::xw_lone4> = nodes
        .lone
        .iter()
        .map(|l| types::xw_lone4 {
            mask: l.mask,
            want: l.want,
            inside: l.inside,
            outside: l.outside,
        })
        .collect();
    update_array_at(lone_map, lone_name, &lone, blone)?;
    tables.put_gen(dir_table, gen, &offset_dir(dir, b24, blone))
}

/// Writes all compiled tables into the maps.
fn fill(maps: &Maps, c: &Compiled, slots: &[u32]) -> Result<()> {
    let classes: Vec<types::xw_class> = c
        .classes
        .iter()
        .map(|k| to_class(k, &c.rules, slots))
        .collect();
    update_array(&maps.classes, "xw_classes", &classes)?;

    let rules: Vec<types::xw_rule> = c
        .rules
        .iter()
        .zip(slots)
        .map(|(r, &slot)| to_rule(r, slot))
        .collect();
    update_array(&maps.rules, "xw_rules", &rules)?;

    let mut tables = Tables::zeroed();
    for (table, vals) in [
        (Table::Proto, &c.proto),
        (Table::Sport, &c.sport),
        (Table::Dport, &c.dport),
        (Table::TcpFlags, &c.tcpflags),
        (Table::Icmp, &c.icmp),
        (Table::Family, &c.family),
        (Table::Vlan, &c.vlan),
        (Table::Frag, &c.frag),
    ] {
        tables.put(table, vals)?;
    }
    fill_addresses(maps, &mut tables, c, 0)?;
    tables.write(&maps.tables, "fill")
}

/// The exact-match key of an IPv4 prefix in generation `gen`.
fn key4(net: &ipnet::Ipv4Net, gen: u32) -> types::xw_lpm4 {
    types::xw_lpm4 {
        prefixlen: u32::from(net.prefix_len()) | gen << abi::GEN_SHIFT,
        addr: net.network().octets(),
    }
}

/// The LPM key of an IPv6 prefix in generation `gen` (the generation is the
/// first data word, so the prefix is 32 bits longer).
fn key6(net: &ipnet::Ipv6Net, gen: u32) -> types::xw_lpm6 {
    types::xw_lpm6 {
        prefixlen: 32 + u32::from(net.prefix_len()),
        gen,
        addr: net.network().octets(),
    }
}

/// Writes `c`'s address tables as generation `gen` (0 or 1): prefix
/// entries keyed with `gen` and nodes into their maps, directories and
/// length masks at `gen << 16` into `tables` (the caller writes it after).
pub(crate) fn fill_addresses(
    maps: &Maps,
    tables: &mut Tables,
    c: &Compiled,
    gen: u32,
) -> Result<()> {
    let k4 = |(net, class): &(ipnet::Ipv4Net, u32)| (key4(net, gen), *class);
    let k6 = |(net, class): &(ipnet::Ipv6Net, u32)| (key6(net, gen), *class);
    // Entries before the directories that lead to them.
    update_pairs(&maps.src4, "xw_src4", hashed4(&c.src4, &c.src4_dir).map(k4))?;
    update_pairs(&maps.dst4, "xw_dst4", hashed4(&c.dst4, &c.dst4_dir).map(k4))?;
    update_pairs(&maps.src6, "xw_src6", c.src6.iter().map(k6))?;
    update_pairs(&maps.dst6, "xw_dst6", c.dst6.iter().map(k6))?;
    for (table, vals) in [
        (Table::Src4Lens, &c.src4_lens),
        (Table::Dst4Lens, &c.dst4_lens),
        (Table::Src6Dir, &c.src6_dir),
        (Table::Dst6Dir, &c.dst6_dir),
    ] {
        tables.put_gen(table, gen, vals)?;
    }
    fill_dir4(
        (&mut *tables, Table::Src4Dir),
        [
            (&maps.src4_n24, "xw_src4_n24"),
            (&maps.src4_n32, "xw_src4_n32"),
            (&maps.src4_lone, "xw_src4_lone"),
        ],
        &c.src4_dir,
        &c.src4_nodes,
        gen,
    )?;
    fill_dir4(
        (tables, Table::Dst4Dir),
        [
            (&maps.dst4_n24, "xw_dst4_n24"),
            (&maps.dst4_n32, "xw_dst4_n32"),
            (&maps.dst4_lone, "xw_dst4_lone"),
        ],
        &c.dst4_dir,
        &c.dst4_nodes,
        gen,
    )
}

/// Deletes `c`'s prefix entries of generation `gen` (no packet uses them
/// any more); the arrays are simply overwritten by the next generation.
pub(crate) fn delete_addresses(maps: &Maps, c: &Compiled, gen: u32) -> Result<()> {
    let k4: Vec<types::xw_lpm4> = hashed4(&c.src4, &c.src4_dir)
        .map(|(n, _)| key4(n, gen))
        .collect();
    delete_keys(&maps.src4, "xw_src4", &k4)?;
    let k4: Vec<types::xw_lpm4> = hashed4(&c.dst4, &c.dst4_dir)
        .map(|(n, _)| key4(n, gen))
        .collect();
    delete_keys(&maps.dst4, "xw_dst4", &k4)?;
    let k6: Vec<types::xw_lpm6> = c.src6.iter().map(|(n, _)| key6(n, gen)).collect();
    delete_keys(&maps.src6, "xw_src6", &k6)?;
    let k6: Vec<types::xw_lpm6> = c.dst6.iter().map(|(n, _)| key6(n, gen)).collect();
    delete_keys(&maps.dst6, "xw_dst6", &k6)
}

fn delete_keys<K: Pod>(map: &MapHandle, name: &'static str, keys: &[K]) -> Result<()> {
    for chunk in keys.chunks(BATCH) {
        // Batched where the map supports it (hash), else one by one (LPM).
        let batched = map.delete_batch(
            bytes_of_slice(chunk),
            chunk.len() as u32,
            MapFlags::ANY,
            MapFlags::ANY,
        );
        if batched.is_err() {
            for k in chunk {
                map.delete(bytes_of_slice(std::slice::from_ref(k)))
                    .map_err(|source| Error::Map {
                        op: "clear",
                        map: name,
                        source,
                    })?;
            }
        }
    }
    Ok(())
}

/// Entries the prefix tables get: twice what `c` needs (plus room), so a
/// set change can be written beside the live generation.
pub(crate) fn prefix_capacity(n: usize) -> usize {
    2 * n + 1024
}

/// Builds the ABI rule record (name truncated to fit, NUL-terminated).
pub(crate) fn to_rule(e: &xdpwall_rules::compile::RuleEntry, slot: u32) -> types::xw_rule {
    let mut r = types::xw_rule {
        slot,
        action: e.action,
        flags: e.flags,
        snaplen: e.snaplen,
        sample: e.sample,
        every_ns: e.every_ns,
        rl_pps: e.rate.pps,
        rl_cap: e.rate.cap,
        rl_fill_ns: e.rate.fill_ns,
        direct: e.direct,
        d: to_direct(&e.packed),
        ..Default::default()
    };
    let room = r.name.len() - 1;
    for (dst, &b) in r.name.iter_mut().zip(e.name.as_bytes().iter().take(room)) {
        *dst = b as i8;
    }
    r
}

fn to_direct(p: &xdpwall_rules::compile::Packed) -> types::xw_direct {
    types::xw_direct {
        key_mask: p.key_mask,
        key_want: p.key_want,
        port: p.port.map(|(lo, span)| types::xw_span { lo, span }),
    }
}

/// Builds the ABI class record, with its first candidate's checks and
/// verdict copied from that rule (`rules[r]` in slot `slots[r]`).
fn to_class(
    c: &xdpwall_rules::compile::Class,
    rules: &[xdpwall_rules::compile::RuleEntry],
    slots: &[u32],
) -> types::xw_class {
    let mut out = types::xw_class {
        ncand: u32::try_from(c.cands.len()).unwrap_or(0),
        flags: if c.overflow { abi::CLASS_OVERFLOW } else { 0 },
        ..Default::default()
    };
    let first = c.cands.first().map(|&e| (e & abi::CAND_ID_MASK) as usize);
    if let Some((rule, &slot)) = first.and_then(|r| rules.get(r).zip(slots.get(r))) {
        out.first = types::xw_first {
            d: to_direct(&rule.packed),
            action: rule.action,
            slot,
        };
    }
    for (dst, &cand) in out.cand.iter_mut().zip(&c.cands) {
        *dst = cand;
    }
    for (dst, &w) in out.bits.iter_mut().zip(c.bits.words()) {
        *dst = w;
    }
    out
}

/// Batch size: big enough to amortise syscalls, small enough to bound memory.
const BATCH: usize = 8192;

fn update_array<T: Pod>(map: &MapHandle, name: &'static str, vals: &[T]) -> Result<()> {
    update_array_at(map, name, vals, 0)
}

/// Writes `vals` at indices `base..`.
fn update_array_at<T: Pod>(
    map: &MapHandle,
    name: &'static str,
    vals: &[T],
    base: u32,
) -> Result<()> {
    for (chunk_no, chunk) in vals.chunks(BATCH).enumerate() {
        let start = base as usize + chunk_no * BATCH;
        let keys: Vec<u32> = (start..start + chunk.len()).map(|k| k as u32).collect();
        batch(
            map,
            name,
            bytes_of_slice(&keys),
            bytes_of_slice(chunk),
            chunk.len(),
        )?;
    }
    Ok(())
}

fn update_pairs<K: Pod>(
    map: &MapHandle,
    name: &'static str,
    pairs: impl Iterator<Item = (K, u32)>,
) -> Result<()> {
    let mut keys = Vec::with_capacity(BATCH);
    let mut vals = Vec::with_capacity(BATCH);
    for (k, v) in pairs {
        keys.push(k);
        vals.push(v);
        if keys.len() == BATCH {
            batch(
                map,
                name,
                bytes_of_slice(&keys),
                bytes_of_slice(&vals),
                keys.len(),
            )?;
            keys.clear();
            vals.clear();
        }
    }
    if !keys.is_empty() {
        batch(
            map,
            name,
            bytes_of_slice(&keys),
            bytes_of_slice(&vals),
            keys.len(),
        )?;
    }
    Ok(())
}

fn batch(map: &MapHandle, name: &'static str, k: &[u8], v: &[u8], n: usize) -> Result<()> {
    map.update_batch(k, v, n as u32, MapFlags::ANY, MapFlags::ANY)
        .map_err(|source| Error::Map {
            op: "fill",
            map: name,
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(errno: i32) -> libbpf_rs::Error {
        libbpf_rs::Error::from(std::io::Error::from_raw_os_error(errno))
    }

    #[test]
    fn refusals_the_kernel_does_not_explain_get_a_hint() {
        assert_eq!(os_errno(&refused(libc::E2BIG)), Some(libc::E2BIG));
        assert_eq!(os_errno(&refused(ENOTSUPP)), Some(ENOTSUPP));
        // The errno is found under a context libbpf-rs may add.
        let wrapped = libbpf_rs::ErrorExt::context(refused(ENOTSUPP), "failed to load object");
        assert_eq!(os_errno(&wrapped), Some(ENOTSUPP));

        let too_large = "processed 1000001 insns\nBPF program is too large. Processed 1000001 insn";
        let limit = load_hint(&refused(libc::E2BIG), too_large);
        assert!(
            limit.starts_with('\n') && limit.contains("1000000 instructions"),
            "{limit}"
        );
        // E2BIG from elsewhere (a map too large) is not blamed on the verifier.
        assert_eq!(
            load_hint(&refused(libc::E2BIG), "map 'x': failed to create"),
            ""
        );
        let jit = load_hint(&refused(ENOTSUPP), "");
        assert!(jit.contains("JIT") && jit.contains("dmesg"), "{jit}");
        // Refusals the verifier's log explains get no hint.
        assert_eq!(load_hint(&refused(libc::EACCES), too_large), "");
        assert_eq!(load_hint(&refused(libc::EINVAL), ""), "");
    }
}
