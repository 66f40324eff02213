//! `pinbook book`: one snapshot of one book (BookService.GetBook), as a ladder or JSON.

use std::io::Write;

use anyhow::Result;
use controlplane::checksum::checksum;
use controlplane::pb::{self, book_service_client::BookServiceClient};
use serde_json::json;

use super::client::{self, ServerArgs};
use controlplane::contract::Level;

use super::ladder;
use super::subscribe::Violations;

/// Arguments of `pinbook book`.
#[derive(clap::Args, Debug)]
pub struct BookArgs {
    /// The symbol, as the feed lists it (AAPL).
    #[arg(value_parser = super::client::parse_symbol)]
    pub symbol: String,
    /// Levels per side.
    #[arg(long, default_value_t = 10)]
    pub depth: u32,
    /// Print one JSON object: {"symbol", "bids": [[price, shares, orders], ...], "asks",
    /// "checksum", "incomplete", "stale"}, prices in ITCH ticks (4 implied decimals).
    #[arg(long)]
    pub json: bool,
    /// Where the server is.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Fetches the book and prints it.
pub fn run(args: &BookArgs) -> Result<()> {
    let book = client::runtime()?.block_on(fetch(args))?;
    let rows = |levels: &[pb::Level]| -> Vec<Level> { levels.iter().map(Level::from).collect() };
    let (bids, asks) = (rows(&book.bids), rows(&book.asks));
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            json!({
                "symbol": book.symbol,
                "price_exponent": book.price_exponent,
                "bids": ladder::json_side(bids.iter().copied()),
                "asks": ladder::json_side(asks.iter().copied()),
                "checksum": book.checksum,
                "incomplete": book.incomplete,
                "stale": book.stale,
            })
        )?;
    } else {
        let mut flags = Vec::new();
        if book.incomplete {
            flags.push("INCOMPLETE");
        }
        if book.stale {
            flags.push("STALE");
        }
        writeln!(
            out,
            "{} checksum {:#010x} {}",
            book.symbol,
            book.checksum,
            flags.join(" ")
        )?;
        ladder::write_ladder(
            &mut out,
            bids.iter().copied(),
            asks.iter().copied(),
            args.depth as usize,
            i8::try_from(book.price_exponent).unwrap_or_default(),
        )?;
    }
    out.flush()?;
    let expected = checksum(
        bids.iter().map(|l| (l.price, l.shares)),
        asks.iter().map(|l| (l.price, l.shares)),
        args.depth as usize,
    );
    if expected != book.checksum {
        eprintln!(
            "pinbook: CONTRACT VIOLATION: {} checksum mismatch: server sent {:#010x}, the \
             levels sent give {expected:#010x}",
            book.symbol, book.checksum
        );
        return Err(Violations {
            count: 1,
            ended: None,
        }
        .into());
    }
    Ok(())
}

async fn fetch(args: &BookArgs) -> Result<pb::BookSnapshot> {
    let channel = client::connect(&args.server).await?;
    let mut books = BookServiceClient::new(channel);
    let request = pb::GetBookRequest {
        symbol: args.symbol.clone(),
        depth: args.depth,
    };
    match books.get_book(client::book_request(request)?).await {
        Ok(response) => Ok(response.into_inner()),
        Err(status) => Err(client::status_error(&status)),
    }
}
