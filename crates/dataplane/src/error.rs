//! Errors of the data-plane crate.

use std::io;

/// What can go wrong loading, attaching or talking to the XDP program.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// libbpf could not open the embedded object.
    #[error("failed to open the embedded XDP object: {0}")]
    Open(#[source] libbpf_rs::Error),
    /// The kernel refused the program; the verifier log tail is attached.
    #[error("the kernel refused to load the XDP program: {source}{hint}{log}")]
    Load {
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
        /// What the refusal means and what to do, for the refusals the
        /// kernel's log does not explain (with a leading newline; may be
        /// empty).
        hint: String,
        /// Last lines of the verifier/libbpf log (with a leading newline).
        log: String,
    },
    /// A map operation failed.
    #[error("failed to {op} map {map}: {source}")]
    Map {
        /// What we tried.
        op: &'static str,
        /// Map name.
        map: &'static str,
        /// Underlying error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// The named interface does not exist in this network namespace.
    #[error("no interface named {0} in this network namespace (see `ip link`)")]
    NoInterface(String),
    /// A `redirect` rule names an interface this network namespace lacks.
    #[error("rule `{rule}`: redirect target {iface} is not an interface in this network namespace; create it first (it must be in the same namespace as the interface xdpwall runs on; see `ip link`) or fix the rule")]
    NoRedirectTarget {
        /// Rule name.
        rule: String,
        /// Interface name.
        iface: String,
    },
    /// Attaching failed.
    #[error("failed to attach to {iface} in {mode} mode: {source}{hint}")]
    Attach {
        /// Interface.
        iface: String,
        /// Mode tried.
        mode: &'static str,
        /// Underlying error.
        #[source]
        source: io::Error,
        /// What to do about it.
        hint: String,
    },
    /// Another program (not xdpwall) is attached.
    #[error("{iface} already runs XDP program `{name}` (id {id}), which is not xdpwall; detach it (`ip link set dev {iface} xdp off`) or pass --force to replace it")]
    Foreign {
        /// Interface.
        iface: String,
        /// Program name.
        name: String,
        /// Program id.
        id: u32,
    },
    /// No xdpwall instance runs on the interface.
    #[error(
        "xdpwall is not running on {0} in this network namespace (start it with `xdpwall run`)"
    )]
    NotRunning(String),
    /// The running instance lacks a map we need (other version?).
    #[error("the XDP program on {iface} lacks map {map}; is it from another xdpwall version? (`xdpwall detach --iface {iface}` removes it)")]
    MissingMap {
        /// Interface.
        iface: String,
        /// Map name.
        map: &'static str,
    },
    /// The running program's counter maps have another layout (another
    /// xdpwall version): they cannot be shared with a new program.
    #[error("the running xdpwall program's {map} has another layout ({what}); it is from another xdpwall version, so its counters cannot be carried over")]
    Incompatible {
        /// Map name.
        map: &'static str,
        /// What differs.
        what: String,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What we tried.
        what: String,
        /// errno.
        #[source]
        source: io::Error,
    },
    /// The tracepoint programs counting XDP errors could not be attached.
    #[error("cannot load or attach the tracepoints that count XDP errors (tp_btf xdp:xdp_exception, xdp:xdp_redirect_err): {source}{log}")]
    Tracepoints {
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
        /// Last lines of the verifier/libbpf log (with a leading newline).
        log: String,
    },
    /// Another process holds the capture tap (and its lease is live).
    #[error("another `xdpwall capture` or `xdpwall top` is tapping {iface} (its lease runs {secs:.1} s more); stop it, or pass --force to take the tap over")]
    TapBusy {
        /// Interface.
        iface: String,
        /// Seconds left on the other lease.
        secs: f64,
    },
    /// Someone else took the tap while we held it.
    #[error("the capture tap on {0} was taken over by another process")]
    TapLost(String),
    /// A compiled table does not fit its array in `struct xw_tables`
    /// (the compiler and the program disagree: a bug, never input).
    #[error("compiled table {table} has {len} entries from index {base}, more than the {room} its array holds; this is a bug in xdpwall, please report it")]
    TableTooLong {
        /// Which array.
        table: String,
        /// Entries written.
        len: usize,
        /// Where they start.
        base: usize,
        /// Entries the array holds.
        room: usize,
    },
    /// A compiled entry does not fit its array's type (a bug, never input).
    #[error("compiled table {table} entry {index} is {value}, more than its {bits}-bit array holds; this is a bug in xdpwall, please report it")]
    TableValue {
        /// Which array.
        table: String,
        /// Entry index.
        index: usize,
        /// Its value.
        value: u32,
        /// Bits an entry holds.
        bits: usize,
    },
    /// A map's value has another size than this build expects.
    #[error("map {map} holds {got} bytes, this xdpwall expects {want}; is the running program from another xdpwall version? (`xdpwall detach` and `run` again loads this one's)")]
    Layout {
        /// Map name.
        map: &'static str,
        /// Bytes it holds.
        got: usize,
        /// Bytes expected.
        want: usize,
    },
    /// BPF_PROG_TEST_RUN refused the packet.
    #[error("BPF_PROG_TEST_RUN failed on a {len}-byte packet: {source}")]
    TestRun {
        /// Packet length.
        len: usize,
        /// errno.
        #[source]
        source: io::Error,
    },
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;

/// Maps a negative libbpf return or errno to an `io::Error`.
pub(crate) fn errno(ret: i32) -> io::Error {
    if ret < 0 {
        io::Error::from_raw_os_error(-ret)
    } else {
        io::Error::last_os_error()
    }
}
