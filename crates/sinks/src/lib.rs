//! Outputs for xdpwall events (terminal lines, JSON lines, pcapng).
