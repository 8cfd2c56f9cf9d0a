//! `run --metrics ADDR`: a small HTTP server for Prometheus scrapes.
//!
//! One thread, one connection at a time, a read timeout: a scraper cannot
//! make it hold memory or threads. Each scrape reads the counters afresh
//! from the instance on the interface (found by its program id, so reloads
//! need no coordination).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use xdpwall_dataplane::attach::{self, AttachMode};
use xdpwall_dataplane::{stats, xdperr};
use xdpwall_sinks::metrics::{render, MetricsSnapshot, RuleMetrics};

/// Counters only `run` knows.
#[derive(Debug, Default)]
pub struct RunCounters {
    /// Successful reloads.
    pub reloads_ok: AtomicU64,
    /// Failed reloads.
    pub reloads_failed: AtomicU64,
}

/// Parses `--metrics`: `HOST:PORT`, or a bare port (then loopback).
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        format!("--metrics: expected HOST:PORT or a port (e.g. 127.0.0.1:9477), got `{s}`")
    })
}

/// A running metrics server; stops when dropped.
pub struct MetricsServer {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves the instance on `iface`.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub fn start(addr: SocketAddr, iface: String, counters: Arc<RunCounters>) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .with_context(|| format!("--metrics: cannot listen on {addr}"))?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || serve(&listener, &iface, &counters, &flag))?;
        Ok(Self {
            stop,
            addr,
            thread: Some(thread),
        })
    }

    /// The bound address (useful with port 0).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: &TcpListener, iface: &str, counters: &RunCounters, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) => {
                let _ = answer(conn, iface, counters);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn answer(mut conn: TcpStream, iface: &str, counters: &RunCounters) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Drain the headers (bounded by the timeout and a line count).
    for _ in 0..100 {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let (status, body, ctype) =
        if request.starts_with("GET ") && (path == "/metrics" || path == "/") {
            match snapshot(iface, counters) {
                Ok(m) => (
                    "200 OK",
                    render(&m),
                    "text/plain; version=0.0.4; charset=utf-8",
                ),
                Err(e) => (
                    "503 Service Unavailable",
                    format!("{e:#}\n"),
                    "text/plain; charset=utf-8",
                ),
            }
        } else {
            (
                "404 Not Found",
                "try /metrics\n".to_string(),
                "text/plain; charset=utf-8",
            )
        };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

fn snapshot(iface: &str, counters: &RunCounters) -> Result<MetricsSnapshot> {
    let inst = attach::find(iface)?;
    let s = stats::read(&inst)?;
    let k = stats::events(&inst)?;
    let info = inst.info()?;
    let xerr = xdperr::read(&inst)?;
    Ok(MetricsSnapshot {
        rules: s
            .rules
            .into_iter()
            .map(|r| RuleMetrics {
                name: r.name,
                action: r.action.into(),
                packets: r.counter.packets,
                bytes: r.counter.bytes,
                limited: r.limited.packets,
                redirect_errors: r.redirect_errors.packets,
            })
            .collect(),
        default_action: s.default_action.into(),
        default_packets: s.default.packets,
        malformed: s
            .malformed
            .iter()
            .map(|(r, c)| ((*r).to_string(), c.packets))
            .collect(),
        transport: crate::cmd::run::transport_name(info.transport).into(),
        events_delivered: info.delivered,
        events_lost: k.lost,
        reloads_ok: counters.reloads_ok.load(Ordering::Relaxed),
        reloads_failed: counters.reloads_failed.load(Ordering::Relaxed),
        mode: AttachMode::from_code(info.mode)
            .map_or("unknown", AttachMode::name)
            .into(),
        xdp_errors: xerr
            .by_kind()
            .iter()
            .map(|(k, n)| ((*k).to_string(), *n))
            .collect(),
        xdp_exceptions: xerr.by_action().map(|(a, n)| (a.to_string(), n)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_address_defaults_to_loopback() {
        assert_eq!(
            parse_addr("9477"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 9477)))
        );
        assert_eq!(parse_addr("0.0.0.0:9100").map(|a| a.port()), Ok(9100));
        assert!(parse_addr("nonsense").is_err());
    }
}
