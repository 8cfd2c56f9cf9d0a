//! Keys from the terminal, read by `top` itself: `poll(2)` on stdin with
//! a timeout, raw bytes decoded into [`Key`]s. Reading ourselves (rather
//! than through crossterm's event loop) lets `top` notice a terminal that
//! went away — end of input or a hang-up, e.g. a closed ssh session — and
//! exit, turning the tap off, instead of spinning on an empty read.

use std::io;
use std::time::Duration;

use super::state::Key;

/// What waiting for input gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Keys typed (possibly none: the timeout passed).
    Keys(Vec<Key>),
    /// The terminal is gone (end of input or hang-up).
    Gone,
}

/// Waits up to `timeout` for bytes on stdin and decodes them.
///
/// # Errors
/// `poll` or `read` fail for a reason other than a signal.
pub fn wait(timeout: Duration) -> io::Result<Input> {
    let mut pfd = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(Input::Keys(Vec::new()))
        } else {
            Err(e)
        };
    }
    if n == 0 {
        return Ok(Input::Keys(Vec::new()));
    }
    if pfd.revents & libc::POLLIN == 0 && pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
        return Ok(Input::Gone);
    }
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its length.
    let r = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
    match r {
        0 => Ok(Input::Gone),
        r if r < 0 => {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => {
                    Ok(Input::Keys(Vec::new()))
                }
                // EIO: the terminal was hung up under us.
                _ if e.raw_os_error() == Some(libc::EIO) => Ok(Input::Gone),
                _ => Err(e),
            }
        }
        r => Ok(Input::Keys(decode(&buf[..r.unsigned_abs()]))),
    }
}

/// Decodes raw-mode terminal bytes: printable UTF-8, Enter, Backspace,
/// Ctrl-C, Esc, and the arrow and page keys' escape sequences (CSI and
/// SS3 forms). A lone ESC at the end of a read is the Esc key.
#[must_use]
pub fn decode(bytes: &[u8]) -> Vec<Key> {
    let mut keys = Vec::new();
    let text = String::from_utf8_lossy(bytes);
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\x03' => keys.push(Key::CtrlC),
            '\r' | '\n' => keys.push(Key::Enter),
            '\x7f' | '\x08' => keys.push(Key::Backspace),
            '\x1b' => match it.peek() {
                Some('[' | 'O') => {
                    it.next();
                    let mut seq = String::new();
                    for s in it.by_ref() {
                        seq.push(s);
                        if s.is_ascii_alphabetic() || s == '~' {
                            break;
                        }
                    }
                    match seq.as_str() {
                        "A" => keys.push(Key::Up),
                        "B" => keys.push(Key::Down),
                        "5~" => keys.push(Key::PageUp),
                        "6~" => keys.push(Key::PageDown),
                        _ => {} // other keys: ignored
                    }
                }
                _ => keys.push(Key::Esc),
            },
            c if !c.is_control() => keys.push(Key::Char(c)),
            _ => {}
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_become_keys() {
        assert_eq!(
            decode(b"q/ab\r\x7f\x03"),
            vec![
                Key::Char('q'),
                Key::Char('/'),
                Key::Char('a'),
                Key::Char('b'),
                Key::Enter,
                Key::Backspace,
                Key::CtrlC
            ]
        );
        assert_eq!(decode(b"\x1b"), vec![Key::Esc]);
        assert_eq!(
            decode(b"\x1b[A\x1b[B\x1bOA\x1b[5~\x1b[6~"),
            vec![Key::Up, Key::Down, Key::Up, Key::PageUp, Key::PageDown]
        );
        // Unknown sequences (F1, Home) are skipped whole, not typed.
        assert_eq!(decode(b"\x1bOP\x1b[1;5Hs"), vec![Key::Char('s')]);
        assert_eq!(decode("é".as_bytes()), vec![Key::Char('é')]);
    }
}
