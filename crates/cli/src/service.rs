//! Telling systemd what `run` is doing (`Type=notify` in
//! dist/xdpwall@.service): ready once the rules are attached, reloading
//! while a reload is applied, stopping on the way out. Without
//! `$NOTIFY_SOCKET` (not under systemd) every call is a no-op.

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    // Notification is advisory: a failure must not stop the firewall.
    if let Err(e) = sd_notify::notify(states) {
        log::warn!("cannot notify systemd: {e}");
    }
}

/// The rules are attached (also after a reload).
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload starts (systemd shows the unit as reloading until [`ready`]).
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    send(&states);
}

/// `run` is detaching and exiting.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;

    /// The one test that touches the process environment.
    #[test]
    fn notifications_reach_the_notify_socket() {
        let path = std::env::temp_dir().join(format!("xw-notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).expect("bind");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        std::env::set_var("NOTIFY_SOCKET", &path);
        super::ready("attached to eth0, 3 rules");
        super::reloading();
        super::stopping();
        std::env::remove_var("NOTIFY_SOCKET");
        let mut got = Vec::new();
        for _ in 0..3 {
            let mut buf = [0u8; 512];
            let n = sock.recv(&mut buf).expect("a notification");
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        let _ = std::fs::remove_file(&path);
        assert_eq!(got[0], "READY=1\nSTATUS=attached to eth0, 3 rules\n");
        assert!(
            got[1].starts_with("RELOADING=1\nMONOTONIC_USEC="),
            "{}",
            got[1]
        );
        assert_eq!(got[2], "STOPPING=1\n");
    }
}
