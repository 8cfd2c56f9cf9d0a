//! The xdpwall rule model: parse and validate `rules.toml` (errors carry
//! `path:line:col`), load set files, and compile rules into the tables the
//! XDP program reads.
#![deny(missing_docs)]

pub mod compile;
pub mod entries;
pub mod error;
pub mod input;
pub mod model;
pub mod parse;
pub mod perms;
pub mod synth;
pub mod table;

#[cfg(test)]
mod testutil;

pub use error::{ConfigError, Diagnostic};
pub use model::*;
pub use parse::{load_config, parse_config};
pub use table::format_rule_table;
