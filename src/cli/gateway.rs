//! `pinbook gateway`: the book service of `serve`, its books read from NATS partitions that
//! `serve --publish` instances fill.

use anyhow::Result;
use controlplane::config::ServeArgs;

use super::serve::{Role, run_as};

/// The flags of `pinbook gateway`: where the books come from, then the server's own (those
/// of `serve`; the feed, simulator, file, UDP and data-core flags do not apply).
#[derive(clap::Args, Debug)]
pub struct GatewayArgs {
    /// NATS servers to read from, comma-separated (`[nats] from`).
    #[arg(
        long,
        value_name = "nats://HOST:PORT,..",
        env = "PINBOOK_FROM",
        value_delimiter = ','
    )]
    pub from: Option<Vec<String>>,
    /// The partitions to serve, comma-separated (`[nats] partitions`; default: `default`).
    #[arg(
        long,
        value_name = "NAME,..",
        env = "PINBOOK_PARTITIONS",
        value_delimiter = ','
    )]
    pub partitions: Option<Vec<String>>,
    /// The server.
    #[command(flatten)]
    pub server: ServeArgs,
}

/// Runs a gateway until SIGINT or SIGTERM.
pub fn run(args: &GatewayArgs) -> Result<()> {
    run_as(&args.server, Role::Gateway, |config| {
        if let Some(from) = &args.from {
            config.nats.from = from.iter().filter(|s| !s.is_empty()).cloned().collect();
        }
        if let Some(partitions) = &args.partitions {
            config.nats.partitions = partitions.clone();
        }
    })
}
