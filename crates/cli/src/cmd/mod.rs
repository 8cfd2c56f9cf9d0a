//! One module per subcommand.

pub mod bench;
pub mod bench_ratelimit;
pub mod bench_reload;
pub mod capture;
pub mod check;
pub mod demo;
pub mod detach;
pub mod gen;
pub mod reload;
pub mod replay;
pub mod run;
pub mod stats;
