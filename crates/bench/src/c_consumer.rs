//! The reference: a minimal C consumer on libbpf (`c/consumer.c`), run as a
//! child process on the same program and maps as the Rust consumer, so the
//! Rust consumer's own overhead is visible in the same run.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{anyhow, bail, Context};

const SOURCE: &str = include_str!("../c/consumer.c");

/// Compiles the C consumer into `dir` (needs `cc` and libbpf-dev).
///
/// # Errors
/// No compiler or no libbpf headers/library: the message says what to install.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let src = dir.join("consumer.c");
    let bin = dir.join("xdpwall-c-consumer");
    std::fs::write(&src, SOURCE)?;
    let out = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&bin)
        .arg(&src)
        .arg("-lbpf")
        .output()
        .context("run cc (install gcc)")?;
    if !out.status.success() {
        bail!(
            "building the C reference consumer failed (needs libbpf-dev): {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("")
        );
    }
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
        let mut child = Command::new("taskset")
            .arg("-c")
            .arg(cpu.to_string())
            .arg(bin)
            .arg(map_id.to_string())
            .arg(if perf { "perf" } else { "ring" })
            .arg(if busy { "busy" } else { "epoll" })
            .arg(per_wakeup.to_string())
            .arg(pages.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("start the C consumer (taskset from util-linux)")?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?);
        let mut r = Self {
            child,
            stdin,
            stdout,
        };
        let mut line = String::new();
        r.stdout.read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = r.child.kill();
            bail!("the C consumer did not start: {line:?}");
        }
        Ok(r)
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

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    }
}
