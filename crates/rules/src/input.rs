//! Opening and reading input files that may not be what they claim: a
//! directory, a FIFO or device (which would block or never end), a symlink
//! loop, a huge or binary file. Every such case is a clear error naming the
//! file and, where one applies, the limit.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, BufRead, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::io_message;

/// Largest config file read (`rules.toml`); big rule sets belong in set files.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// Longest line of a set file, in bytes (a CIDR and a comment fit easily).
pub const MAX_LINE_BYTES: usize = 4096;

/// Why an input file could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The operating system refused (missing, permission, symlink loop, …).
    #[error("{}", describe_io(.0))]
    Io(#[source] io::Error),
    /// The path names a directory.
    #[error("is a directory; expected a file")]
    Directory,
    /// The path names a FIFO, socket or device, which is never read (it
    /// could block or never end).
    #[error("is a {0}, not a regular file; give the path of a file")]
    NotRegular(&'static str),
    /// The file is over a size limit.
    #[error("is {size} bytes, over the limit of {limit} bytes ({what})")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
        /// Which limit.
        what: &'static str,
    },
}

impl From<io::Error> for InputError {
    fn from(error: io::Error) -> Self {
        InputError::Io(error)
    }
}

/// An I/O error's message, with a hint for the cases that need one.
fn describe_io(error: &io::Error) -> String {
    let text = io_message(error);
    match error.raw_os_error() {
        Some(libc::ELOOP) => format!("{text} (a symlink loop?)"),
        Some(libc::EACCES) => format!("{text} (check the file's owner and mode)"),
        _ => text,
    }
}

/// What kind of non-regular file `meta` describes.
fn kind_of(meta: &Metadata) -> Option<InputError> {
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    Some(if t.is_dir() {
        InputError::Directory
    } else if t.is_fifo() {
        InputError::NotRegular("FIFO (named pipe)")
    } else if t.is_char_device() {
        InputError::NotRegular("character device")
    } else if t.is_block_device() {
        InputError::NotRegular("block device")
    } else if t.is_socket() {
        InputError::NotRegular("socket")
    } else {
        InputError::NotRegular("special file")
    })
}

/// Opens `path` for reading if it is a regular file (following symlinks).
///
/// The type is checked before opening, so a FIFO is never opened (opening
/// one blocks until a writer appears); the open itself is non-blocking and
/// the type is checked again on the open file, in case the path changed in
/// between.
///
/// # Errors
/// [`InputError`] saying what the path is instead, or why it cannot be read.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), InputError> {
    let meta = std::fs::metadata(path)?;
    if let Some(error) = kind_of(&meta) {
        return Err(error);
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if let Some(error) = kind_of(&meta) {
        return Err(error);
    }
    Ok((file, meta))
}

/// Reads a whole text file of at most `limit` bytes (`what` names the limit
/// in the error).
///
/// # Errors
/// As [`open_regular`], or [`InputError::TooLarge`].
pub fn read_capped(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, InputError> {
    let (file, meta) = open_regular(path)?;
    if meta.len() > limit {
        return Err(InputError::TooLarge {
            size: meta.len(),
            limit,
            what,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow after the check: never read more than the limit.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    let size = bytes.len() as u64;
    if size > limit {
        return Err(InputError::TooLarge { size, limit, what });
    }
    Ok(bytes)
}

/// 1-based line and byte column of `offset` in `bytes`.
#[must_use]
pub fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    (line, offset - start + 1)
}

/// Why some bytes are not text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotText {
    /// A NUL byte (text never has one).
    Nul,
    /// A byte sequence that is not UTF-8.
    Utf8,
}

impl std::fmt::Display for NotText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotText::Nul => "a NUL byte",
            NotText::Utf8 => "invalid UTF-8",
        })
    }
}

/// The offset of the first NUL byte or invalid UTF-8 sequence in `bytes`.
#[must_use]
pub fn binary_at(bytes: &[u8]) -> Option<(usize, NotText)> {
    // Fast path: plain ASCII without NUL.
    if bytes.is_ascii() && memchr::memchr(0, bytes).is_none() {
        return None;
    }
    let utf8_end = std::str::from_utf8(bytes).err().map(|e| e.valid_up_to());
    let nul = memchr::memchr(0, bytes);
    match (nul, utf8_end) {
        (Some(n), Some(u)) if u < n => Some((u, NotText::Utf8)),
        (Some(n), _) => Some((n, NotText::Nul)),
        (None, Some(u)) => Some((u, NotText::Utf8)),
        (None, None) => None,
    }
}

/// What [`read_line_bounded`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A whole line of this many bytes (without its `\n`).
    Whole(usize),
    /// `max + 1` bytes without a line end: the line is too long, and the
    /// rest of it is still unread (see [`skip_line`]).
    Long,
}

/// Reads the next line into `buf` (cleared first), but never more than
/// `max + 1` bytes, so one huge line (or a file with no line ends) cannot
/// exhaust memory, and the caller can look at its start before going on.
///
/// Returns `None` at the end of input.
///
/// # Errors
/// Read errors.
pub fn read_line_bounded<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<Line>> {
    buf.clear();
    loop {
        let avail = match reader.fill_buf() {
            Ok(avail) => avail,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok((!buf.is_empty()).then_some(Line::Whole(buf.len())));
        }
        let room = (max + 1).saturating_sub(buf.len());
        let window = &avail[..avail.len().min(room)];
        if let Some(at) = memchr::memchr(b'\n', window) {
            buf.extend_from_slice(&window[..=at]);
            reader.consume(at + 1);
            return Ok(Some(Line::Whole(buf.len() - 1)));
        }
        let n = window.len();
        buf.extend_from_slice(window);
        reader.consume(n);
        if buf.len() > max {
            return Ok(Some(Line::Long));
        }
    }
}

/// Discards input through the next `\n` (or the end); returns how many
/// bytes came before it.
///
/// # Errors
/// Read errors.
pub fn skip_line<R: BufRead>(reader: &mut R) -> io::Result<usize> {
    let mut skipped = 0;
    loop {
        let avail = match reader.fill_buf() {
            Ok(avail) => avail,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(skipped);
        }
        if let Some(at) = memchr::memchr(b'\n', avail) {
            reader.consume(at + 1);
            return Ok(skipped + at);
        }
        let n = avail.len();
        skipped += n;
        reader.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::io::Cursor;

    #[test]
    fn bounded_lines_keep_at_most_the_limit() {
        let long = "x".repeat(10_000);
        let text = format!("short\n{long}\n{}\nlast", "y".repeat(16));
        let mut r = Cursor::new(text.into_bytes());
        let mut buf = Vec::new();
        let next = |r: &mut Cursor<Vec<u8>>, buf: &mut Vec<u8>| {
            read_line_bounded(r, buf, 16).expect("read")
        };
        assert_eq!(next(&mut r, &mut buf), Some(Line::Whole(5)));
        assert_eq!(buf, b"short\n");
        assert_eq!(next(&mut r, &mut buf), Some(Line::Long));
        assert_eq!(buf.len(), 17, "only max + 1 bytes kept");
        assert_eq!(skip_line(&mut r).expect("skip"), 10_000 - 17);
        // Exactly at the limit is a whole line.
        assert_eq!(next(&mut r, &mut buf), Some(Line::Whole(16)));
        assert_eq!(next(&mut r, &mut buf), Some(Line::Whole(4)));
        assert_eq!(buf, b"last");
        assert_eq!(next(&mut r, &mut buf), None);
    }

    #[test]
    fn binary_detection_finds_the_first_bad_byte() {
        assert_eq!(binary_at(b"10.0.0.0/8\n"), None);
        assert_eq!(binary_at(b"ab\0c\xff"), Some((2, NotText::Nul)));
        assert_eq!(binary_at(b"ab\xffc\0"), Some((2, NotText::Utf8)));
        assert_eq!(line_col(b"a\nbc\nd", 4), (2, 3));
    }

    #[test]
    fn directories_fifos_devices_and_loops_are_refused() {
        let dir = TempDir::new("input");
        let err = open_regular(&dir.0).expect_err("a directory");
        assert_eq!(err.to_string(), "is a directory; expected a file");

        let fifo = dir.0.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        // Returns at once: a FIFO is never opened (no writer would block it).
        let err = open_regular(&fifo).expect_err("a fifo");
        assert!(err
            .to_string()
            .contains("is a FIFO (named pipe), not a regular file"));

        let err = open_regular(Path::new("/dev/null")).expect_err("a device");
        assert!(err.to_string().contains("is a character device"));

        let a = dir.0.join("a");
        let b = dir.0.join("b");
        std::os::unix::fs::symlink(&b, &a).expect("symlink");
        std::os::unix::fs::symlink(&a, &b).expect("symlink");
        let err = open_regular(&a).expect_err("a loop");
        assert!(err.to_string().contains("(a symlink loop?)"), "{err}");

        let err = open_regular(&dir.0.join("missing")).expect_err("missing");
        assert_eq!(err.to_string(), "No such file or directory");
    }

    #[test]
    fn size_cap_names_the_limit() {
        let dir = TempDir::new("cap");
        let path = dir.0.join("f");
        std::fs::write(&path, vec![b'a'; 100]).expect("write");
        assert_eq!(
            read_capped(&path, 100, "test limit").expect("read").len(),
            100
        );
        let err = read_capped(&path, 99, "test limit").expect_err("too big");
        assert_eq!(
            err.to_string(),
            "is 100 bytes, over the limit of 99 bytes (test limit)"
        );
    }
}
