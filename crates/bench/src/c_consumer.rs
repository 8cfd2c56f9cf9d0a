//! The reference: a minimal C consumer on libbpf (`c/consumer.c`, built
//! against the same libbpf as the Rust consumer), run as a child process on
//! the same program and maps as the Rust consumer, so the Rust consumer's
//! own overhead is visible in the same run.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{anyhow, bail, Context};

/// The consumer, built by build.rs against libbpf-sys's vendored libbpf
/// (the one the Rust consumer links); empty when that build failed.
const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/xdpwall-c-consumer"));

/// Why build.rs could not build it (empty when it did).
fn build_error() -> &'static str {
    option_env!("XDPWALL_C_CONSUMER_ERROR").unwrap_or("")
}

/// Writes the C consumer into `dir` and returns its path.
///
/// # Errors
/// It was not built with xdpwall (the message says why), or `dir` is not
/// writable.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if BINARY.is_empty() {
        bail!(
            "it was not built with xdpwall ({}); it needs a C compiler, libelf-dev, zlib1g-dev and linux-libc-dev, which scripts/setup.sh installs (the next build tries again)",
            build_error().lines().next().unwrap_or("no reason recorded")
        );
    }
    std::fs::create_dir_all(dir)?;
    let bin = dir.join("xdpwall-c-consumer");
    std::fs::write(&bin, BINARY).with_context(|| format!("write {}", bin.display()))?;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
    Ok(bin)
}

/// What the C consumer reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Report {
    /// Records read.
    pub delivered: u64,
    /// Perf lost samples from PERF_RECORD_LOST.
    pub lost_cb: u64,
    /// Latency median, ns.
    pub p50_ns: u64,
    /// Latency 99th percentile, ns.
    pub p99_ns: u64,
    /// Latency max, ns.
    pub max_ns: u64,
    /// Records older than the previous one.
    pub order: u64,
    /// Largest backwards step, ns.
    pub maxback_ns: u64,
    /// Backwards steps within one CPU.
    pub percpu: u64,
    /// Records older than the newest delivered before them.
    pub late: u64,
    /// Largest such lateness, ns.
    pub maxlate_ns: u64,
    /// CLOCK_MONOTONIC time of the last record's callback, ns.
    pub last_ns: u64,
    /// CPU time (user + system) from "ready" to the end of the drain, ns.
    pub cpu_ns: u64,
    /// Voluntary context switches in that time (sleeps).
    pub nvcsw: u64,
    /// Involuntary context switches in that time (preemptions).
    pub nivcsw: u64,
}

/// A running C consumer.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Running {
    /// Starts it on map `map_id` and waits until it is set up.
    ///
    /// # Errors
    /// It cannot start or set up its buffer.
    pub fn start(
        bin: &Path,
        map_id: u32,
        perf: bool,
        busy: bool,
        per_wakeup: u32,
        pages: usize,
        cpu: usize,
    ) -> anyhow::Result<Self> {
        let mode = if busy { "busy" } else { "epoll" };
        Self::spawn(bin, map_id, perf, mode, per_wakeup, pages, cpu)
    }

    /// Starts it in drain mode (see [`Running::drain`]).
    ///
    /// # Errors
    /// As [`Running::start`].
    pub fn start_drain(
        bin: &Path,
        map_id: u32,
        perf: bool,
        per_wakeup: u32,
        pages: usize,
        cpu: usize,
    ) -> anyhow::Result<Self> {
        Self::spawn(bin, map_id, perf, "drain", per_wakeup, pages, cpu)
    }

    fn spawn(
        bin: &Path,
        map_id: u32,
        perf: bool,
        mode: &str,
        per_wakeup: u32,
        pages: usize,
        cpu: usize,
    ) -> anyhow::Result<Self> {
        let args = [
            map_id.to_string(),
            (if perf { "perf" } else { "ring" }).to_string(),
            mode.to_string(),
            per_wakeup.to_string(),
            pages.to_string(),
        ];
        let (child, stdin, stdout) = start_ready(bin, cpu, &args, "the C consumer")?;
        Ok(Self {
            child,
            stdin: Some(stdin),
            stdout,
        })
    }

    /// Drain mode: consumes until `total` records have been delivered since
    /// it started and returns how long this took.
    ///
    /// # Errors
    /// It is gone, or it gave up (records it waited for never came).
    pub fn drain(&mut self, total: u64) -> anyhow::Result<std::time::Duration> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("the C consumer's stdin is closed"))?;
        writeln!(stdin, "{total}")?;
        stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let (delivered, ns) = parse_drained(&line)?;
        if delivered != total {
            bail!("the C consumer drained {delivered} records, expected {total}");
        }
        Ok(std::time::Duration::from_nanos(ns))
    }

    /// Its process id (taskset execs the consumer itself).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Tells it the producers are done; waits for its report.
    ///
    /// # Errors
    /// It failed or printed something else.
    pub fn finish(mut self) -> anyhow::Result<Report> {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.flush();
        }
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let status = self.child.wait()?;
        if !status.success() {
            bail!("the C consumer failed: {status}");
        }
        parse(&line)
    }
}

/// Starts `bin args…` pinned to `cpu` (taskset execs it) and waits for its
/// "ready" line; `what` names it in errors. A child that says anything else
/// is killed.
fn start_ready(
    bin: &Path,
    cpu: usize,
    args: &[String],
    what: &str,
) -> anyhow::Result<(Child, ChildStdin, BufReader<ChildStdout>)> {
    let mut child = Command::new("taskset")
        .arg("-c")
        .arg(cpu.to_string())
        .arg(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {what} (taskset from util-linux)"))?;
    let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin"))?;
    let mut stdout = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?);
    let mut line = String::new();
    let read = stdout.read_line(&mut line);
    if read.is_err() || line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        read?;
        bail!("{what} did not start: {line:?}");
    }
    Ok((child, stdin, stdout))
}

/// The drains' producer: the C binary's `fill` mode, a process of its own
/// pinned to a CPU, running the program on a frame when asked.
pub struct Filler {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Filler {
    /// Starts it on program `prog_id` with `frame` (written next to `bin`).
    ///
    /// # Errors
    /// It cannot start, or cannot open the program.
    pub fn start(bin: &Path, prog_id: u32, frame: &[u8], cpu: usize) -> anyhow::Result<Self> {
        let path = bin.with_file_name("frame.bin");
        std::fs::write(&path, frame).with_context(|| format!("write {}", path.display()))?;
        let args = [
            "fill".to_string(),
            prog_id.to_string(),
            path.to_string_lossy().into_owned(),
        ];
        let (child, stdin, stdout) = start_ready(bin, cpu, &args, "the filler")?;
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    /// Runs the program `n` times; returns when it has.
    ///
    /// # Errors
    /// The run failed or the filler is gone.
    pub fn fill(&mut self, n: u32) -> anyhow::Result<()> {
        writeln!(self.stdin, "{n}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        if line.trim() != format!("filled {n} retval 1") {
            bail!("the filler failed (the program must drop: XDP_DROP = 1): {line:?}");
        }
        Ok(())
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// "drained D ns T" → (D, T).
fn parse_drained(line: &str) -> anyhow::Result<(u64, u64)> {
    match line.split_whitespace().collect::<Vec<_>>()[..] {
        ["drained", d, "ns", t] => Ok((d.parse()?, t.parse()?)),
        _ => bail!("the C consumer did not drain: {line:?}"),
    }
}

fn parse(line: &str) -> anyhow::Result<Report> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let get = |key: &str| -> anyhow::Result<u64> {
        let i = words
            .iter()
            .position(|w| *w == key)
            .ok_or_else(|| anyhow!("no {key} in {line:?}"))?;
        words
            .get(i + 1)
            .ok_or_else(|| anyhow!("no value for {key}"))?
            .parse()
            .context("a number")
    };
    Ok(Report {
        delivered: get("delivered")?,
        lost_cb: get("lost_cb")?,
        p50_ns: get("p50_ns")?,
        p99_ns: get("p99_ns")?,
        max_ns: get("max_ns")?,
        order: get("order")?,
        maxback_ns: get("maxback_ns")?,
        percpu: get("percpu")?,
        late: get("late")?,
        maxlate_ns: get("maxlate_ns")?,
        last_ns: get("last_ns")?,
        cpu_ns: get("cpu_ns")?,
        nvcsw: get("nvcsw")?,
        nivcsw: get("nivcsw")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both consumers busy-poll alike, or the Rust / C rows would compare
    /// waiting policies instead of consumers.
    #[test]
    fn the_c_consumer_pauses_like_xdpwalls_busy_poll() {
        let src = include_str!("../c/consumer.c");
        let (min, max) = xdpwall_events::consumer::BUSY_BACKOFF;
        assert!(src.contains(&format!("#define BUSY_BACKOFF_MIN {min}\n")));
        assert!(src.contains(&format!("#define BUSY_BACKOFF_MAX {max}\n")));
    }

    #[test]
    fn parses_the_report_line() {
        let r = parse(
            "delivered 10 lost_cb 1 p50_ns 2 p99_ns 3 max_ns 4 order 5 maxback_ns 6 percpu 0 \
             late 12 maxlate_ns 13 last_ns 7 cpu_ns 8 nvcsw 9 nivcsw 11\n",
        )
        .expect("parses");
        assert_eq!(
            (
                r.delivered,
                r.lost_cb,
                r.p50_ns,
                r.p99_ns,
                r.max_ns,
                r.order,
                r.maxback_ns
            ),
            (10, 1, 2, 3, 4, 5, 6)
        );
        assert_eq!((r.last_ns, r.cpu_ns, r.nvcsw, r.nivcsw), (7, 8, 9, 11));
        assert_eq!((r.late, r.maxlate_ns), (12, 13));
        assert!(parse("nonsense").is_err());
        assert_eq!(
            parse_drained("drained 40 ns 1234\n").expect("parses"),
            (40, 1234)
        );
        assert!(parse_drained("stuck at 3 of 40\n").is_err());
    }
}
