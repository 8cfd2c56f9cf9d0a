//! Bounded real traffic between the namespaces of a lab, and counting
//! listeners that prove what arrived.
//!
//! Every function takes the [`Netns`] to act in; sockets are created inside
//! it with [`Netns::run`], so traffic never leaves the lab's namespaces.
//! Counts and waits are bounded by the caller's `count` and `timeout`.

use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::netns::Netns;

/// How often background listeners look at their stop flag.
const LISTEN_TICK: Duration = Duration::from_millis(20);

/// Largest UDP payload over IPv4.
const MAX_UDP_PAYLOAD: usize = 65_507;

fn transient(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted)
        || e.raw_os_error() == Some(libc::ENOBUFS)
}

fn unspecified(like: &SocketAddr) -> SocketAddr {
    match like {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// Sends `count` UDP datagrams of `payload_len` bytes from `ns` to `dst`,
/// from `src` (default: any address, ephemeral port). Returns how many the
/// kernel accepted (a datagram refused with ENOBUFS/EAGAIN is not counted);
/// whether they arrived is for a [`udp_listen`] counter to tell.
pub fn udp_send(
    ns: &Netns,
    src: Option<SocketAddr>,
    dst: SocketAddr,
    count: usize,
    payload_len: usize,
) -> Result<usize> {
    if payload_len > MAX_UDP_PAYLOAD {
        return Err(Error::InvalidArgument(format!(
            "UDP payload {payload_len} > {MAX_UDP_PAYLOAD}"
        )));
    }
    let from = src.unwrap_or_else(|| unspecified(&dst));
    if from.is_ipv4() != dst.is_ipv4() {
        return Err(Error::InvalidArgument(format!(
            "source {from} and destination {dst} differ in family"
        )));
    }
    let payload: Vec<u8> = (0..payload_len).map(|i| (i % 251) as u8).collect();
    ns.run(|| {
        let sock =
            UdpSocket::bind(from).map_err(|e| Error::io(format!("binding UDP {from}"), e))?;
        let mut sent = 0;
        for _ in 0..count {
            match sock.send_to(&payload, dst) {
                Ok(_) => sent += 1,
                Err(e) if transient(&e) => {}
                Err(e) => return Err(Error::io(format!("sending UDP to {dst}"), e)),
            }
        }
        Ok(sent)
    })?
}

/// What [`tcp_connect_attempts`] observed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpOutcome {
    /// Handshakes that completed (closed again at once).
    pub connected: usize,
    /// Attempts answered with a RST (closed port).
    pub refused: usize,
    /// Attempts with no answer within the timeout (e.g. a dropped SYN).
    pub timed_out: usize,
    /// Attempts that failed with host/network unreachable (ICMP error or no
    /// neighbour).
    pub unreachable: usize,
}

/// Makes `count` sequential TCP connection attempts from `ns` to `dst`, each a
/// non-blocking connect bounded by `timeout`, and classifies the results.
/// Takes at most about `count × timeout`.
pub fn tcp_connect_attempts(
    ns: &Netns,
    dst: SocketAddr,
    count: usize,
    timeout: Duration,
) -> Result<TcpOutcome> {
    if timeout.is_zero() {
        return Err(Error::InvalidArgument(
            "TCP connect timeout must be non-zero".into(),
        ));
    }
    ns.run(|| {
        let mut out = TcpOutcome::default();
        for _ in 0..count {
            match TcpStream::connect_timeout(&dst, timeout) {
                Ok(stream) => {
                    out.connected += 1;
                    drop(stream);
                }
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => out.refused += 1,
                Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                    out.timed_out += 1
                }
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EHOSTUNREACH | libc::ENETUNREACH)
                    ) =>
                {
                    out.unreachable += 1
                }
                Err(e) => return Err(Error::io(format!("connecting to {dst}"), e)),
            }
        }
        Ok(out)
    })?
}

/// What [`ping`] observed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PingOutcome {
    /// Echo requests handed to the kernel.
    pub sent: usize,
    /// Matching echo replies received in time.
    pub replies: usize,
}

static PING_ID: AtomicU16 = AtomicU16::new(0);

const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP6_ECHO_REQUEST: u8 = 128;
const ICMP6_ECHO_REPLY: u8 = 129;
const PING_PAYLOAD: usize = 32;

/// Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from(chunk[0]) << 8
        };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP or ICMPv6 echo request; the v4 checksum is filled in, for v6 the
/// kernel computes it.
fn echo_request(v6: bool, id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![
        if v6 {
            ICMP6_ECHO_REQUEST
        } else {
            ICMP_ECHO_REQUEST
        },
        0,
        0,
        0,
    ];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend((0..PING_PAYLOAD).map(|i| b'x' ^ i as u8));
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Does `icmp` (the ICMP part of a received packet) answer our request?
fn is_reply(v6: bool, icmp: &[u8], id: u16, seq: u16) -> bool {
    let want = if v6 {
        ICMP6_ECHO_REPLY
    } else {
        ICMP_ECHO_REPLY
    };
    icmp.len() >= 8
        && icmp[0] == want
        && icmp[1] == 0
        && icmp[4..6] == id.to_be_bytes()
        && icmp[6..8] == seq.to_be_bytes()
}

fn raw_icmp_socket(v6: bool) -> Result<OwnedFd> {
    let (domain, proto) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(Error::io(
            "creating a raw ICMP socket (needs CAP_NET_RAW)",
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` is a freshly created descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A socket address in C layout.
fn sockaddr(addr: IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        IpAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.octets());
            std::mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = a.octets();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// The source address of a received packet, from recvfrom's sockaddr.
fn source_of(ss: &libc::sockaddr_storage) -> Option<IpAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()).into())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(Ipv6Addr::from(sin6.sin6_addr.s6_addr).into())
        }
        _ => None,
    }
}

/// Waits until `fd` is readable or `timeout` passes; true when readable.
fn wait_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        // Round up so a sub-millisecond remainder still waits.
        let ms = if left.is_zero() { 0 } else { ms.max(1) };
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(rc > 0);
    }
}

/// Sends one echo request and waits for its reply; true if it came.
fn ping_once(
    fd: &OwnedFd,
    dst: IpAddr,
    id: u16,
    seq: u16,
    timeout: Duration,
) -> Result<Option<bool>> {
    let v6 = dst.is_ipv6();
    let req = echo_request(v6, id, seq);
    let (sa, sa_len) = sockaddr(dst);
    // SAFETY: buffer and address are valid for the given lengths.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            req.as_ptr().cast(),
            req.len(),
            0,
            (&sa as *const libc::sockaddr_storage).cast(),
            sa_len,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        if transient(&e) {
            return Ok(None);
        }
        return Err(Error::io(format!("sending ICMP echo to {dst}"), e));
    }
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Some(false));
        }
        if !wait_readable(fd.as_raw_fd(), left)
            .map_err(|e| Error::io("polling the ICMP socket", e))?
        {
            return Ok(Some(false));
        }
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut from_len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: buffer and address storage are valid for the given lengths.
        let got = unsafe {
            libc::recvfrom(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                (&mut from as *mut libc::sockaddr_storage).cast(),
                &mut from_len,
            )
        };
        if got < 0 {
            let e = io::Error::last_os_error();
            if transient(&e) {
                continue;
            }
            return Err(Error::io("receiving ICMP", e));
        }
        let pkt = &buf[..got as usize];
        // Raw IPv4 sockets deliver the IP header, raw ICMPv6 sockets do not.
        let icmp = if v6 {
            pkt
        } else {
            let ihl = usize::from(pkt.first().map_or(0, |b| b & 0x0f)) * 4;
            if ihl < 20 || pkt.len() < ihl {
                continue;
            }
            &pkt[ihl..]
        };
        if source_of(&from) == Some(dst) && is_reply(v6, icmp, id, seq) {
            return Ok(Some(true));
        }
    }
}

/// Sends `count` ICMP (or ICMPv6) echo requests from `ns` to `dst`, one at a
/// time, each waiting up to `timeout` for its reply. Uses a raw socket
/// (CAP_NET_RAW). Takes at most about `count × timeout`.
pub fn ping(ns: &Netns, dst: IpAddr, count: usize, timeout: Duration) -> Result<PingOutcome> {
    let id = (std::process::id() as u16) ^ PING_ID.fetch_add(0x9e37, Ordering::Relaxed);
    ns.run(|| {
        let fd = raw_icmp_socket(dst.is_ipv6())?;
        let mut out = PingOutcome::default();
        for i in 0..count {
            let seq = (i & 0xffff) as u16;
            match ping_once(&fd, dst, id, seq, timeout)? {
                None => {}
                Some(replied) => {
                    out.sent += 1;
                    if replied {
                        out.replies += 1;
                    }
                }
            }
        }
        Ok(out)
    })?
}

/// A background thread counting what arrives on a socket; stopped and
/// joined on drop.
#[derive(Debug)]
struct Counting {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Counting {
    fn start<F>(local: SocketAddr, body: F) -> Result<Counting>
    where
        F: FnOnce(&AtomicBool, &AtomicU64, &AtomicU64) + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let (s, c, b) = (stop.clone(), count.clone(), bytes.clone());
        let thread = std::thread::Builder::new()
            .name("xw-listen".into())
            .spawn(move || body(&s, &c, &b))
            .map_err(|e| Error::io("spawning a listener thread", e))?;
        Ok(Counting {
            local,
            stop,
            count,
            bytes,
            thread: Some(thread),
        })
    }

    fn wait_for(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.count.load(Ordering::Relaxed) >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Counts UDP datagrams arriving at a socket bound in a namespace; returned
/// by [`udp_listen`]. The receiving thread stops and is joined on drop.
#[derive(Debug)]
pub struct UdpCounter(Counting);

impl UdpCounter {
    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local
    }

    /// Datagrams received so far.
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }

    /// Payload bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.0.bytes.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` datagrams arrived or `timeout` passed; true
    /// when they arrived.
    pub fn wait_for(&self, n: u64, timeout: Duration) -> bool {
        self.0.wait_for(n, timeout)
    }

    /// Stops receiving and returns the final count.
    pub fn stop(mut self) -> u64 {
        self.0.halt();
        self.count()
    }
}

/// Binds a UDP socket to `addr` inside `ns` and counts arriving datagrams on
/// a background thread.
pub fn udp_listen(ns: &Netns, addr: SocketAddr) -> Result<UdpCounter> {
    let sock = ns
        .run(|| UdpSocket::bind(addr))?
        .map_err(|e| Error::io(format!("binding UDP {addr}"), e))?;
    sock.set_read_timeout(Some(LISTEN_TICK))
        .map_err(|e| Error::io("setting SO_RCVTIMEO", e))?;
    let local = sock.local_addr().map_err(|e| Error::io("getsockname", e))?;
    let c = Counting::start(local, move |stop, count, bytes| {
        let mut buf = vec![0u8; 65_536];
        while !stop.load(Ordering::Relaxed) {
            match sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    count.fetch_add(1, Ordering::Relaxed);
                    bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if transient(&e) || e.kind() == ErrorKind::TimedOut => {}
                Err(_) => std::thread::sleep(LISTEN_TICK),
            }
        }
    })?;
    Ok(UdpCounter(c))
}

/// Counts TCP connections accepted by a listener in a namespace; returned by
/// [`tcp_listen`]. Accepted connections are closed at once. The accepting
/// thread stops and is joined on drop.
#[derive(Debug)]
pub struct TcpCounter(Counting);

impl TcpCounter {
    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local
    }

    /// Connections accepted so far.
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` connections were accepted or `timeout`
    /// passed; true when they were.
    pub fn wait_for(&self, n: u64, timeout: Duration) -> bool {
        self.0.wait_for(n, timeout)
    }

    /// Stops accepting and returns the final count.
    pub fn stop(mut self) -> u64 {
        self.0.halt();
        self.count()
    }
}

/// Listens on TCP `addr` inside `ns` and counts accepted connections on a
/// background thread.
pub fn tcp_listen(ns: &Netns, addr: SocketAddr) -> Result<TcpCounter> {
    let listener = ns
        .run(|| TcpListener::bind(addr))?
        .map_err(|e| Error::io(format!("listening on TCP {addr}"), e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("setting O_NONBLOCK", e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::io("getsockname", e))?;
    let c = Counting::start(local, move |stop, count, _| {
        while !stop.load(Ordering::Relaxed) {
            match wait_readable(listener.as_raw_fd(), LISTEN_TICK) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(_) => {
                    std::thread::sleep(LISTEN_TICK);
                    continue;
                }
            }
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        // e.g. EMFILE or ECONNABORTED: back off, retry later.
                        std::thread::sleep(LISTEN_TICK);
                        break;
                    }
                }
            }
        }
    })?;
    Ok(TcpCounter(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_known_vector() {
        // RFC 1071 example words.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
        let req = echo_request(false, 0x1234, 7);
        assert_eq!(checksum(&req), 0, "a packet with its checksum sums to zero");
        assert!(is_reply(false, &[0, 0, 0, 0, 0x12, 0x34, 0, 7], 0x1234, 7));
        assert!(!is_reply(false, &[8, 0, 0, 0, 0x12, 0x34, 0, 7], 0x1234, 7));
    }
}
