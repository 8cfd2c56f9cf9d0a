//! The control channel from `xdpwall reload` to the `xdpwall run` serving an
//! interface: an abstract Unix socket named after the interface.
//!
//! Abstract sockets belong to the network namespace, not to the filesystem
//! or the mount namespace, so the channel works the same under
//! `ip netns exec`, `nsenter --net` and in containers, needs no bpffs or
//! runtime directory, and vanishes with the process (even after `kill -9`).
//! Only root or the user running `run` may use it (checked with
//! `SO_PEERCRED`).
//!
//! Protocol: one request line (`reload` or `yield`), then one reply: a status
//! line `ok <text>` or `error <exit-code>`, followed by free text, until EOF.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// The abstract socket name of `iface`'s `run`.
fn name(iface: &str) -> String {
    format!("xdpwall/run/{iface}")
}

fn addr(iface: &str) -> io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(name(iface).as_bytes())
}

/// What a client asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// Re-read the config and swap the rules atomically.
    Reload,
    /// Stop serving the interface: a newer `run` has taken it over.
    Yield,
}

impl Cmd {
    fn word(self) -> &'static str {
        match self {
            Cmd::Reload => "reload",
            Cmd::Yield => "yield",
        }
    }
}

/// One accepted request, answered with [`Request::reply`].
pub struct Request {
    stream: UnixStream,
    /// What was asked.
    pub cmd: Cmd,
}

impl Request {
    /// Sends the outcome: `Ok(text)` or `Err((exit code, text))`.
    pub fn reply(mut self, outcome: std::result::Result<String, (i32, String)>) {
        let msg = match outcome {
            Ok(t) => format!("ok {t}\n"),
            Err((code, t)) => format!("error {code}\n{t}\n"),
        };
        // The client may have given up; nothing to do about it here.
        let _ = self.stream.write_all(msg.as_bytes());
    }
}

/// The listening side, owned by `run`.
pub struct Server {
    listener: UnixListener,
    /// The uid allowed besides root: the one running `run`.
    uid: u32,
}

impl Server {
    /// Binds `iface`'s socket. When another `run` holds it (this one takes
    /// over from it), that one is asked to yield first.
    ///
    /// # Errors
    /// The socket cannot be bound even after the holder yielded.
    pub fn bind(iface: &str) -> Result<Self> {
        let a = addr(iface).context("control socket name")?;
        for attempt in 0..3 {
            match UnixListener::bind_addr(&a) {
                Ok(listener) => {
                    listener
                        .set_nonblocking(true)
                        .context("control socket: non-blocking")?;
                    // SAFETY: geteuid has no preconditions.
                    let uid = unsafe { libc::geteuid() };
                    return Ok(Self { listener, uid });
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempt < 2 => {
                    // The holder replies only after closing its listener.
                    request(iface, Cmd::Yield, Duration::from_secs(5)).with_context(|| {
                        format!("another `xdpwall run` serves {iface} and did not yield")
                    })?;
                }
                Err(e) => {
                    return Err(anyhow!(e).context(format!(
                        "cannot open the control socket of {iface} (is another `xdpwall run` serving it?)"
                    )))
                }
            }
        }
        bail!("cannot open the control socket of {iface}")
    }

    /// A pending request, if any (never blocks). Connections from users
    /// other than root and ours are refused; garbage is answered and dropped.
    pub fn poll(&self) -> Option<Request> {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            };
            if let Some(r) = self.admit(stream) {
                return Some(r);
            }
        }
    }

    fn admit(&self, mut stream: UnixStream) -> Option<Request> {
        let uid = peer_uid(&stream).ok()?;
        if uid != 0 && uid != self.uid {
            let _ = stream.write_all(b"error 1\npermission denied: only root or the user running `xdpwall run` may control it\n");
            return None;
        }
        // A client that connects and says nothing must not stall the loop.
        stream.set_nonblocking(false).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .ok()?;
        let mut line = String::new();
        BufReader::new((&stream).take(64))
            .read_line(&mut line)
            .ok()?;
        let cmd = match line.trim() {
            "reload" => Cmd::Reload,
            "yield" => Cmd::Yield,
            other => {
                let _ = writeln!(stream, "error 2\nunknown request {other:?}");
                return None;
            }
        };
        Some(Request { stream, cmd })
    }
}

fn peer_uid(s: &UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::addr_of_mut!(cred).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(cred.uid)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The answer of a `run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Done; the text says what.
    Ok(String),
    /// Failed with this exit code and text.
    Failed(i32, String),
}

/// Sends `cmd` to the `run` serving `iface` and waits up to `timeout` for
/// its reply.
///
/// # Errors
/// No `run` serves `iface` in this network namespace, or it did not answer.
pub fn request(iface: &str, cmd: Cmd, timeout: Duration) -> Result<Reply> {
    let a = addr(iface).context("control socket name")?;
    let mut s = UnixStream::connect_addr(&a).map_err(|e| {
        anyhow!(
            "no `xdpwall run` process serves {iface} in this network namespace ({e}); \
             if the rules are still in force after the process died, start \
             `xdpwall run CONFIG --iface {iface}`: it takes over without a gap"
        )
    })?;
    s.set_read_timeout(Some(timeout))?;
    writeln!(s, "{}", cmd.word())?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .with_context(|| format!("no answer from the `xdpwall run` serving {iface}"))?;
    parse_reply(&text)
}

fn parse_reply(text: &str) -> Result<Reply> {
    let (status, rest) = text.split_once('\n').unwrap_or((text, ""));
    if let Some(t) = status.strip_prefix("ok") {
        return Ok(Reply::Ok(t.trim().to_string()));
    }
    if let Some(code) = status.strip_prefix("error ") {
        let code = code.trim().parse().unwrap_or(1);
        return Ok(Reply::Failed(code, rest.trim_end().to_string()));
    }
    bail!("unexpected answer from `xdpwall run`: {text:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse() {
        assert_eq!(
            parse_reply("ok program id 7\n").ok(),
            Some(Reply::Ok("program id 7".into()))
        );
        assert_eq!(
            parse_reply("error 2\nrules.toml:3:1: bad\nmore\n").ok(),
            Some(Reply::Failed(2, "rules.toml:3:1: bad\nmore".into()))
        );
        assert!(parse_reply("garbage").is_err());
    }

    /// Server and client in one process: a reload request is delivered and
    /// answered; a second server takes the name over after the first yields.
    #[test]
    fn request_reply_and_takeover() {
        let iface = format!("xw-test-{}", std::process::id());
        let first = Server::bind(&iface).expect("bind");
        let client = std::thread::spawn({
            let iface = iface.clone();
            move || request(&iface, Cmd::Reload, Duration::from_secs(10))
        });
        let req = loop {
            if let Some(r) = first.poll() {
                break r;
            }
            std::thread::yield_now();
        };
        assert_eq!(req.cmd, Cmd::Reload);
        req.reply(Err((2, "bad config".into())));
        let got = client.join().expect("client thread").expect("reply");
        assert_eq!(got, Reply::Failed(2, "bad config".into()));

        // A second server: the first is asked to yield (served by a thread
        // standing in for the old `run` loop), then the name is free.
        let old = std::thread::spawn(move || loop {
            if let Some(r) = first.poll() {
                let cmd = r.cmd;
                drop(first);
                r.reply(Ok("yielded".into()));
                return cmd;
            }
            std::thread::yield_now();
        });
        let second = Server::bind(&iface).expect("bind after yield");
        assert_eq!(old.join().expect("old thread"), Cmd::Yield);
        drop(second);
        assert!(
            request(&iface, Cmd::Reload, Duration::from_secs(1)).is_err(),
            "nobody serves the name any more"
        );
    }
}
