//! The subcommands of the `pinbook` binary, one file each.

pub mod book;
pub mod client;
pub mod config;
pub mod faults;
pub mod gateway;
pub mod generate;
pub mod ladder;
pub mod publish;
pub mod replay;
pub mod request_server;
pub mod serve;
pub mod stats;
pub mod streams;
pub mod subscribe;
pub mod symbols;
