//! Benchmark engines.
