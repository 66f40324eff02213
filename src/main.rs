//! `pinbook`: the one binary of the service.

mod cli;

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
    /// Write a deterministic synthetic ITCH 5.0 BinaryFILE.
    Gen(cli::generate::GenArgs),
    /// Build every book from an ITCH 5.0 BinaryFILE as fast as possible and print them.
    Replay(cli::replay::ReplayArgs),
    /// Send an ITCH 5.0 BinaryFILE over UDP as a MoldUDP64 feed, paced at a fixed rate.
    Publish(cli::publish::PublishArgs),
    /// Run the service: pinned data-plane shards on the feed (the built-in simulator unless
    /// told otherwise), the gRPC control plane, health, reflection and metrics.
    Serve(Box<controlplane::config::ServeArgs>),
    /// Serve the books of NATS partitions that `serve --publish` instances fill: the same
    /// gRPC contract, without a data plane (run any number side by side).
    Gateway(Box<cli::gateway::GatewayArgs>),
    /// Stream books from a running server, checking the subscription contract as they come
    /// (exit status 3 if it was broken).
    Subscribe(cli::subscribe::SubscribeArgs),
    /// Print one book of a running server.
    Book(cli::book::BookArgs),
    /// Stream every order of books (market by order) from a running server: a live queue
    /// view, each level's orders oldest first (exit status 3 if the contract was broken).
    Orders(cli::streams::OrdersArgs),
    /// Stream the trades of symbols from a running server.
    Trades(cli::streams::TradesArgs),
    /// Print the trading status of symbols (all published ones by default); --follow streams
    /// its changes.
    Status(cli::streams::StatusArgs),
    /// Print where one order stands in its level's queue (orders and shares ahead of it).
    Order(cli::streams::OrderArgs),
    /// List, add or remove the symbols a running server publishes (admin token needed).
    Symbols(cli::symbols::SymbolsArgs),
    /// Print a running server's per-shard counters (admin token needed).
    Stats(cli::stats::StatsArgs),
    /// Print a running server's configuration, or change a setting while it serves (admin
    /// token needed).
    Config(cli::config::ConfigArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Topology => Topology::detect()
            .map(|topology| print!("{topology}"))
            .map_err(anyhow::Error::from),
        Command::Gen(args) => cli::generate::run(&args),
        Command::Replay(args) => cli::replay::run(&args),
        Command::Publish(args) => cli::publish::run(&args),
        Command::Serve(args) => cli::serve::run(&args),
        Command::Gateway(args) => cli::gateway::run(&args),
        Command::Subscribe(args) => cli::subscribe::run(&args),
        Command::Book(args) => cli::book::run(&args),
        Command::Orders(args) => cli::streams::orders(&args),
        Command::Trades(args) => cli::streams::trades(&args),
        Command::Status(args) => cli::streams::status(&args),
        Command::Order(args) => cli::streams::order(&args),
        Command::Symbols(args) => cli::symbols::run(&args),
        Command::Stats(args) => cli::stats::run(&args),
        Command::Config(args) => cli::config::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `pinbook replay … | head`: the reader left, which is not an error of ours
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pinbook: {}", describe(&e));
            if e.chain().any(|c| c.is::<cli::subscribe::Violations>()) {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes, each cause once: many of our errors already quote their source.
fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}
