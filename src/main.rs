//! `pinbook`: the one binary of the service.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dataplane::topology::Topology;

/// Order-book service for low-latency market data: a pinned, busy-polling data plane and a
/// gRPC control plane.
#[derive(Parser, Debug)]
#[command(name = "pinbook", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the machine's NUMA nodes, cores, L3 groups and memory-binding support, as the
    /// data plane sees them.
    Topology,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Topology => match Topology::detect() {
            Ok(topology) => {
                print!("{topology}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pinbook: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
