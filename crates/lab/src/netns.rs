//! RAII network namespaces.

use std::ffi::{OsStr, OsString};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{run_cmd, Error, Result};

/// Where `ip netns` keeps its namespace files.
const RUN_DIR: &str = "/run/netns";
/// Prefix of every namespace this crate creates.
const PREFIX: &str = "xw-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A network namespace created with `ip netns add`, deleted on drop.
///
/// Named `xw-<pid>-<counter>-<tag>`, unique within and across processes. The
/// loopback interface is up. Dropping it (also during panic unwinding) runs
/// `ip netns del`; sockets still open inside keep the kernel namespace alive
/// until they close, but the name is gone at once.
#[derive(Debug)]
pub struct Netns {
    name: String,
    path: PathBuf,
}

impl Netns {
    /// Creates a namespace tagged `tag` (only `[A-Za-z0-9_]` is kept, at most
    /// 12 characters) and brings `lo` up. Sweeps stale namespaces first.
    pub fn new(tag: &str) -> Result<Netns> {
        // Best effort: a failing sweep must not prevent creating a lab.
        let _ = sweep_stale();
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(12)
            .collect();
        let pid = std::process::id();
        let mut last_err = None;
        // A leftover of an earlier process with our (reused) pid may hold a
        // name; skip such names.
        for _ in 0..64 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = if tag.is_empty() {
                format!("{PREFIX}{pid}-{n}")
            } else {
                format!("{PREFIX}{pid}-{n}-{tag}")
            };
            match run_cmd(Command::new("ip").args(["netns", "add", &name])) {
                Ok(_) => {
                    let ns = Netns {
                        path: Path::new(RUN_DIR).join(&name),
                        name,
                    };
                    ns.ip(&["link", "set", "lo", "up"])?;
                    return Ok(ns);
                }
                Err(e @ Error::Command { .. }) if e.to_string().contains("File exists") => {
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| Error::InvalidArgument("no free namespace name".into())))
    }

    /// The namespace name (as in `ip netns list`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file, `/run/netns/NAME`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a fresh thread that has joined this namespace
    /// (`setns(CLONE_NEWNET)`), waits for it and returns its result.
    ///
    /// Sockets created inside `f` belong to the namespace and stay there when
    /// moved to other threads. A panic inside `f` is resumed in the caller.
    pub fn run<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let path = self.path.as_path();
        std::thread::scope(|s| {
            let handle = std::thread::Builder::new()
                .name("xw-netns".into())
                .spawn_scoped(s, move || -> Result<R> {
                    enter(path)?;
                    Ok(f())
                })
                .map_err(|e| Error::io("spawning a thread", e))?;
            match handle.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// A command running `program` in this namespace via
    /// `ip netns exec NAME program` (which also remounts `/sys` for it).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec"]).arg(&self.name).arg(program);
        cmd
    }

    /// A command running `program` in this namespace via
    /// `nsenter --net=/run/netns/NAME program` (network namespace only).
    pub fn nsenter_command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut net = OsString::from("--net=");
        net.push(&self.path);
        let mut cmd = Command::new("nsenter");
        cmd.arg(net).arg(program);
        cmd
    }

    /// Runs `ip -n NAME ARGS…` and returns its stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        run_cmd(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run_cmd(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!(
                "xdpwall-lab: cannot delete network namespace {}: {e}",
                self.name
            );
        }
    }
}

/// Moves the calling thread into the network namespace at `path`.
fn enter(path: &Path) -> Result<()> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    // SAFETY: the fd is valid for the duration of the call; setns only changes
    // this thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(Error::io(
            format!("setns into {}", path.display()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// The pid encoded in a name `xw-<pid>-…`, if it is one of ours.
fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse::<i32>().ok().filter(|p| *p > 0)
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    // EPERM: exists but belongs to someone else.
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Deletes namespaces named `xw-<pid>-…` whose process no longer exists and
/// returns their names. Runs automatically whenever a [`Netns`] is created.
///
/// Individual deletions that fail (e.g. a concurrent sweeper won) are
/// ignored; only failing to list `/run/netns` is an error.
pub fn sweep_stale() -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(RUN_DIR) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("listing {RUN_DIR}"), e)),
    };
    let me = std::process::id() as i32;
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if pid == me || pid_alive(pid) {
            continue;
        }
        if run_cmd(Command::new("ip").args(["netns", "del", &name])).is_ok() {
            removed.push(name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::owner_pid;

    #[test]
    fn parses_owner_pid() {
        assert_eq!(owner_pid("xw-123-4-a"), Some(123));
        assert_eq!(owner_pid("xw-123-4"), Some(123));
        assert_eq!(owner_pid("xw-abc-4"), None);
        assert_eq!(owner_pid("xw-0-4"), None);
        assert_eq!(owner_pid("other-1-2"), None);
        assert_eq!(owner_pid("xw-12"), None);
    }
}
