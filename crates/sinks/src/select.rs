//! Choosing and opening a sink from the `--events OUT` argument.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::PathBuf;

use crate::{JsonSink, PcapngSink, Sink, TerminalSink};

/// Which output `--events` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    /// `-`: terminal lines on stdout.
    Terminal,
    /// `json`: JSON lines on stdout.
    Json,
    /// `FILE.pcapng`: a pcapng file (created or truncated).
    Pcapng(PathBuf),
}

/// Parses the `OUT` of `--events OUT`: `-`, `json`, or a path ending in
/// `.pcapng`.
pub fn parse_events_arg(s: &str) -> Result<SinkKind, String> {
    match s {
        "-" => Ok(SinkKind::Terminal),
        "json" => Ok(SinkKind::Json),
        _ if s.len() > ".pcapng".len() && s.ends_with(".pcapng") => {
            Ok(SinkKind::Pcapng(PathBuf::from(s)))
        }
        _ => Err(format!(
            "--events: expected -, json or a .pcapng path, got `{s}`"
        )),
    }
}

/// Opens the sink for `kind`. Terminal lines (ANSI colours when `colour`)
/// and JSON lines go to a buffered stdout; terminal lines are flushed per
/// event, JSON lines at [`Sink::flush`]. A pcapng file is created (or
/// truncated) and buffered, its section header written at once.
pub fn open(kind: &SinkKind, colour: bool) -> io::Result<Box<dyn Sink + Send>> {
    Ok(match kind {
        SinkKind::Terminal => Box::new(TerminalSink::new(BufWriter::new(io::stdout()), colour)),
        SinkKind::Json => Box::new(JsonSink::new(BufWriter::new(io::stdout()))),
        SinkKind::Pcapng(path) => {
            let file = File::create(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("--events: cannot create {}: {e}", path.display()),
                )
            })?;
            Box::new(PcapngSink::new(BufWriter::new(file))?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(parse_events_arg("-"), Ok(SinkKind::Terminal));
        assert_eq!(parse_events_arg("json"), Ok(SinkKind::Json));
        assert_eq!(
            parse_events_arg("/tmp/x.pcapng"),
            Ok(SinkKind::Pcapng("/tmp/x.pcapng".into()))
        );
        assert_eq!(
            parse_events_arg("out.pcapng"),
            Ok(SinkKind::Pcapng("out.pcapng".into()))
        );
    }

    #[test]
    fn rejects_anything_else_with_a_clear_message() {
        for bad in ["x", "", "JSON", "out.pcap", ".pcapng", "json.txt"] {
            assert_eq!(
                parse_events_arg(bad),
                Err(format!(
                    "--events: expected -, json or a .pcapng path, got `{bad}`"
                ))
            );
        }
    }

    #[test]
    fn open_pcapng_writes_a_file_and_reports_bad_paths() {
        let path =
            std::env::temp_dir().join(format!("xdpwall-sinks-open-{}.pcapng", std::process::id()));
        let mut sink = open(&SinkKind::Pcapng(path.clone()), false).unwrap();
        let data = udp4();
        sink.write(&event(&data, None, "pass")).unwrap();
        sink.flush().unwrap();
        drop(sink);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(&bytes[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
        assert!(bytes.windows(data.len()).any(|w| w == data.as_slice()));

        let bad = SinkKind::Pcapng("/nonexistent-dir/x.pcapng".into());
        let err = open(&bad, false).err().unwrap();
        assert!(
            err.to_string()
                .contains("cannot create /nonexistent-dir/x.pcapng"),
            "{err}"
        );
    }

    #[test]
    fn stdout_sinks_open_and_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let t = open(&SinkKind::Terminal, false).unwrap();
        let j = open(&SinkKind::Json, false).unwrap();
        assert_send(&t);
        assert_send(&j);
    }
}
