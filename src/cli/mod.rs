//! The subcommands of the `pinbook` binary, one file each.

pub mod generate;
pub mod publish;
pub mod replay;
pub mod serve;
