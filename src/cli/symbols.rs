//! `pinbook symbols`: list, add and remove published symbols (AdminService).

use std::io::Write;

use anyhow::Result;
use controlplane::pb::{self, admin_service_client::AdminServiceClient};
use serde_json::json;
use tonic::transport::Channel;

use super::client::{self, AdminArgs};

/// Arguments of `pinbook symbols`.
#[derive(clap::Args, Debug)]
pub struct SymbolsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
    /// Print JSON: {"symbols": [...]} for list, the symbol's object for add and remove.
    #[arg(long, global = true)]
    pub json: bool,
    /// Where the server and the admin token are.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// A `pinbook symbols` action.
#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Every symbol the server knows, published or not.
    List,
    /// Start publishing a symbol the feed lists.
    Add {
        /// The symbol (AAPL).
        #[arg(value_parser = super::client::parse_symbol)]
        symbol: String,
    },
    /// Stop publishing a symbol; its subscribers get SymbolRemoved.
    Remove {
        /// The symbol (AAPL).
        #[arg(value_parser = super::client::parse_symbol)]
        symbol: String,
    },
}

/// Runs the action and prints its answer.
pub fn run(args: &SymbolsArgs) -> Result<()> {
    let token = client::admin_token(&args.admin)?;
    let answer = client::runtime()?.block_on(call(args, &token))?;
    let mut out = std::io::stdout().lock();
    match answer {
        Answer::List(mut symbols) => {
            symbols.sort_by(|a, b| a.symbol.cmp(&b.symbol));
            if args.json {
                let list: Vec<serde_json::Value> = symbols.iter().map(info_json).collect();
                writeln!(out, "{}", json!({ "symbols": list }))?;
            } else {
                write_table(&mut out, &symbols)?;
            }
        }
        Answer::One(info) => {
            if args.json {
                writeln!(out, "{}", info_json(&info))?;
            } else {
                writeln!(
                    out,
                    "{} {} (shard {}, core {}, {} levels)",
                    info.symbol,
                    state_name(info.state),
                    info.shard,
                    info.core,
                    info.levels
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

enum Answer {
    List(Vec<pb::SymbolInfo>),
    One(pb::SymbolInfo),
}

async fn call(args: &SymbolsArgs, token: &str) -> Result<Answer> {
    let channel = client::connect(&args.admin.server).await?;
    let mut admin: AdminServiceClient<Channel> = AdminServiceClient::new(channel);
    let request = |symbol: &String| {
        let symbol = symbol.clone();
        client::authorized(pb::SymbolRequest { symbol }, token)
    };
    let answer = match &args.action {
        Action::List => admin
            .list_symbols(client::authorized(pb::ListSymbolsRequest {}, token)?)
            .await
            .map(|r| Answer::List(r.into_inner().symbols)),
        Action::Add { symbol } => admin
            .add_symbol(request(symbol)?)
            .await
            .map(|r| Answer::One(r.into_inner())),
        Action::Remove { symbol } => admin
            .remove_symbol(request(symbol)?)
            .await
            .map(|r| Answer::One(r.into_inner())),
    };
    answer.map_err(|status| client::status_error(&status))
}

fn state_name(state: i32) -> &'static str {
    match pb::SymbolState::try_from(state) {
        Ok(pb::SymbolState::Published) => "published",
        Ok(pb::SymbolState::Removed) => "removed",
        _ => "unknown",
    }
}

fn flags(info: &pb::SymbolInfo) -> String {
    let mut flags = Vec::new();
    if info.incomplete {
        flags.push("incomplete");
    }
    if info.stale {
        flags.push("stale");
    }
    flags.join(",")
}

fn info_json(info: &pb::SymbolInfo) -> serde_json::Value {
    json!({
        "symbol": info.symbol,
        "state": state_name(info.state),
        "shard": info.shard,
        "core": info.core,
        "updates": info.updates,
        "levels": info.levels,
        "stock_locate": info.stock_locate,
        "incomplete": info.incomplete,
        "stale": info.stale,
    })
}

fn write_table(out: &mut impl Write, symbols: &[pb::SymbolInfo]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<8} {:<9} {:>5} {:>4} {:>12} {:>6}  flags",
        "symbol", "state", "shard", "core", "updates", "levels"
    )?;
    for s in symbols {
        writeln!(
            out,
            "{:<8} {:<9} {:>5} {:>4} {:>12} {:>6}  {}",
            s.symbol,
            state_name(s.state),
            s.shard,
            s.core,
            s.updates,
            s.levels,
            flags(s)
        )?;
    }
    Ok(())
}
