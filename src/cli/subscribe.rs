//! `pinbook subscribe`: stream books (BookService.Subscribe), hold them, check the
//! subscription contract as the updates come, and show them: a redrawn ladder on a terminal,
//! one line per update otherwise, or JSON lines.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use controlplane::pb::{self, book_service_client::BookServiceClient, book_update::Update};
use serde_json::json;
use tokio::time::Instant;

use super::client::{self, ServerArgs};
use super::ladder;
use controlplane::contract::{Checker, Level, Phase};
use controlplane::price::decimal;

/// Arguments of `pinbook subscribe`.
#[derive(clap::Args, Debug)]
pub struct SubscribeArgs {
    /// The symbols, as the feed lists them (AAPL MSFT).
    #[arg(required = true, value_parser = super::client::parse_symbol)]
    pub symbols: Vec<String>,
    /// Levels per side (the server allows 1 up to its max_depth).
    #[arg(long, default_value_t = 10)]
    pub depth: u32,
    /// How the server sends updates.
    #[arg(long, value_enum, default_value_t = ModeArg::Every)]
    pub mode: ModeArg,
    /// With --mode conflated: the interval, 1 to 60000 ms [default: 100].
    #[arg(long, value_name = "MS")]
    pub interval_ms: Option<u32>,
    /// One JSON object per update on stdout; prices in ITCH ticks (4 implied decimals).
    #[arg(long)]
    pub json: bool,
    /// Exit after this many updates (snapshot chunks, deltas, resyncs, removals).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Exit after this many seconds.
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    pub seconds: Option<Duration>,
    /// Where the server is.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// How the server sends updates.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeArg {
    /// Every change of the best `depth` levels.
    Every,
    /// At most one batch of changes per symbol every `--interval-ms`.
    Conflated,
    /// The best bid and ask only, every change.
    Top,
}

/// Conflated interval when none is given.
const DEFAULT_INTERVAL_MS: u32 = 100;

/// Shortest time between two redraws of the terminal view.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// Resyncs, removals and violations kept under the terminal view.
const NOTICES_SHOWN: usize = 6;

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text} is not a positive number of seconds"))
}

/// The subscription broke its contract: the run ends with exit status 3.
#[derive(Debug)]
pub struct Violations {
    /// Violations seen.
    pub count: u64,
    /// How the stream ended, when it ended with an error.
    pub ended: Option<String>,
}

impl std::fmt::Display for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(ended) = &self.ended {
            write!(f, "{ended}; ")?;
        }
        write!(
            f,
            "{} contract violation{} seen (the CONTRACT VIOLATION lines above say which)",
            self.count,
            if self.count == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Violations {}

/// Subscribes and shows the books until the stream ends (the server ends it, or every
/// subscribed symbol was removed), `--count` or `--seconds`.
pub fn run(args: &SubscribeArgs) -> Result<()> {
    let interval_ms = match (args.mode, args.interval_ms) {
        (ModeArg::Conflated, ms) => ms.unwrap_or(DEFAULT_INTERVAL_MS),
        (_, None) => 0,
        (_, Some(_)) => bail!("--interval-ms only applies to --mode conflated"),
    };
    let mode = match args.mode {
        ModeArg::Every => pb::Mode::EveryChange,
        ModeArg::Conflated => pb::Mode::Conflated,
        ModeArg::Top => pb::Mode::TopOfBook,
    };
    let request = pb::SubscribeRequest {
        symbols: args.symbols.clone(),
        depth: args.depth,
        mode: mode as i32,
        interval_ms,
        stream: pb::Stream::Levels as i32,
    };
    // the server holds top-of-book subscribers to one level whatever the depth asked
    let depth = if args.mode == ModeArg::Top {
        1
    } else {
        args.depth as usize
    };
    let terminal = !args.json && std::io::stdout().is_terminal();
    let mut session = Session {
        checker: Checker::new(&args.symbols, depth),
        depth,
        json: args.json,
        terminal,
        violations: 0,
        notices: VecDeque::new(),
        dirty: false,
        out: std::io::stdout().lock(),
    };
    let ended = client::streaming_runtime()?.block_on(session.stream(args, request))?;
    session.draw()?;
    session.out.flush()?;
    if session.violations > 0 {
        return Err(Violations {
            count: session.violations,
            ended: ended.map(|e| e.to_string()),
        }
        .into());
    }
    ended.map_or(Ok(()), Err)
}

/// One subscription being shown.
struct Session {
    checker: Checker,
    depth: usize,
    json: bool,
    terminal: bool,
    violations: u64,
    /// The latest resyncs, removals and violations, for the terminal view.
    notices: VecDeque<String>,
    /// The terminal view is behind the books.
    dirty: bool,
    out: std::io::StdoutLock<'static>,
}

impl Session {
    /// Streams until the end: `--count` updates, `--seconds`, or the removal of the last
    /// symbol still held (the server sends nothing more for it, only heartbeats).
    /// `Ok(Some(error))` when the stream ended with an error, `Err` when the subscription
    /// could not start or the output failed.
    async fn stream(
        &mut self,
        args: &SubscribeArgs,
        request: pb::SubscribeRequest,
    ) -> Result<Option<anyhow::Error>> {
        let channel = client::connect(&args.server).await?;
        let mut books = BookServiceClient::new(channel);
        let mut updates = books
            .subscribe(client::book_request(request)?)
            .await
            .map_err(|status| client::status_error(&status))?
            .into_inner();
        let deadline = args.seconds.map(|s| Instant::now() + s);
        let mut redraw = tokio::time::interval(REDRAW_EVERY);
        redraw.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut seen = 0u64;
        loop {
            if args.count.is_some_and(|n| seen >= n) {
                return Ok(None);
            }
            let time_up = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = updates.message() => match message {
                    Ok(Some(pb::BookUpdate { update: Some(update) })) => {
                        if !matches!(update, Update::Heartbeat(_)) {
                            seen += 1;
                        }
                        let removal = matches!(update, Update::Removed(_));
                        self.handle(update)?;
                        if removal && self.checker.books().next().is_none() {
                            return Ok(None);
                        }
                    }
                    Ok(Some(pb::BookUpdate { update: None })) => {
                        self.violation("an update with nothing in it".to_owned());
                    }
                    Ok(None) => {
                        return Ok(Some(anyhow!(
                            "the server ended the stream without a status; resubscribe"
                        )));
                    }
                    Err(status) => return Ok(Some(client::status_error(&status))),
                },
                _ = redraw.tick(), if self.terminal => self.draw()?,
                () = time_up => return Ok(None),
            }
        }
    }

    fn violation(&mut self, text: String) {
        self.violations += 1;
        eprintln!("pinbook: CONTRACT VIOLATION: {text}");
        self.notice(format!("CONTRACT VIOLATION: {text}"));
    }

    fn violations(&mut self, found: Vec<String>) {
        for text in found {
            self.violation(text);
        }
    }

    fn notice(&mut self, text: String) {
        if self.notices.len() == NOTICES_SHOWN {
            self.notices.pop_front();
        }
        self.notices.push_back(text);
    }

    fn handle(&mut self, update: Update) -> Result<()> {
        match update {
            Update::Snapshot(s) => {
                let found = self.checker.snapshot(&s);
                self.violations(found);
                self.show_snapshot(&s)?;
            }
            Update::Delta(d) => {
                let found = self.checker.delta(&d);
                self.violations(found);
                self.show_delta(&d)?;
            }
            Update::Resync(r) => {
                let found = self.checker.resync(&r);
                self.violations(found);
                let reason = pb::ResyncReason::try_from(r.reason)
                    .unwrap_or(pb::ResyncReason::Unspecified)
                    .as_str_name();
                let line = format!("resync {}: {reason} ({})", r.symbol, r.detail);
                if self.json {
                    let j = json!({"type": "resync", "symbol": r.symbol, "reason": reason,
                                   "detail": r.detail});
                    writeln!(self.out, "{j}")?;
                } else if !self.terminal {
                    writeln!(self.out, "{line}")?;
                }
                self.notice(line);
            }
            Update::Removed(r) => {
                let found = self.checker.removed(&r);
                self.violations(found);
                let line = format!(
                    "removed {} at seq {}: the server no longer publishes it",
                    r.symbol, r.seq
                );
                if self.json {
                    let j = json!({"type": "removed", "symbol": r.symbol, "seq": r.seq});
                    writeln!(self.out, "{j}")?;
                } else if !self.terminal {
                    writeln!(self.out, "{line}")?;
                }
                self.notice(line);
            }
            Update::Heartbeat(h) => {
                if self.json {
                    writeln!(self.out, "{}", json!({ "heartbeat": h.send_ns }))?;
                }
            }
            Update::Orders(_) | Update::Order(_) | Update::Trade(_) | Update::Status(_) => {
                self.violation("an order, trade or status update on a level subscription".into());
            }
        }
        self.dirty = true;
        Ok(())
    }

    fn show_snapshot(&mut self, s: &pb::BookSnapshot) -> Result<()> {
        let rows = |levels: &[pb::Level]| ladder::json_side(levels.iter().map(Level::from));
        let t = s.timestamps.unwrap_or_default();
        let exponent = i8::try_from(s.price_exponent).unwrap_or_default();
        if self.json {
            let j = json!({
                "symbol": s.symbol, "seq": s.seq, "type": "snapshot",
                "price_exponent": s.price_exponent,
                "bids": rows(&s.bids), "asks": rows(&s.asks),
                "checksum": s.checksum, "last_chunk": s.last_chunk,
                "incomplete": s.incomplete, "stale": s.stale,
                "exchange_ns": t.exchange_ns, "ingest_ns": t.ingest_ns, "send_ns": t.send_ns,
            });
            writeln!(self.out, "{j}")?;
        } else if !self.terminal {
            let best = |l: Option<&pb::Level>| {
                l.map_or("-".to_owned(), |l| {
                    format!("{} x {}", decimal(l.price, exponent), l.shares)
                })
            };
            writeln!(
                self.out,
                "{} seq {} snapshot {} bids {} asks, best {} / {}{}{}{}",
                s.symbol,
                s.seq,
                s.bids.len(),
                s.asks.len(),
                best(s.bids.first()),
                best(s.asks.first()),
                if s.last_chunk {
                    ""
                } else {
                    " (more chunks follow)"
                },
                if s.stale { " STALE" } else { "" },
                if s.incomplete { " INCOMPLETE" } else { "" },
            )?;
        }
        Ok(())
    }

    fn show_delta(&mut self, d: &pb::BookDelta) -> Result<()> {
        let side = match pb::Side::try_from(d.side) {
            Ok(pb::Side::Bid) => "bid",
            Ok(pb::Side::Ask) => "ask",
            _ => "unspecified",
        };
        let level = d.level.unwrap_or_default();
        let t = d.timestamps.unwrap_or_default();
        let exponent = self
            .checker
            .book(&d.symbol)
            .map_or(0, |held| held.price_exponent);
        if self.json {
            let j = json!({
                "symbol": d.symbol, "seq": d.seq, "type": "delta", "side": side,
                "price": level.price, "shares": level.shares, "orders": level.orders,
                "checksum": d.checksum,
                "exchange_ns": t.exchange_ns, "ingest_ns": t.ingest_ns, "send_ns": t.send_ns,
            });
            writeln!(self.out, "{j}")?;
        } else if !self.terminal {
            writeln!(
                self.out,
                "{} seq {} delta {side} {} x {} ({} orders)",
                d.symbol,
                d.seq,
                decimal(level.price, exponent),
                level.shares,
                level.orders
            )?;
        }
        Ok(())
    }

    /// Redraws the terminal view if the books changed since the last time.
    fn draw(&mut self) -> Result<()> {
        if !self.terminal || !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        let mut screen = String::from("\x1b[2J\x1b[H");
        for (symbol, held) in self.checker.books() {
            let mut flags = Vec::new();
            if held.stale {
                flags.push("STALE");
            }
            if held.incomplete {
                flags.push("INCOMPLETE");
            }
            if held.phase != Phase::Live {
                flags.push("(awaiting snapshot)");
            }
            let _ = writeln!(screen, "{symbol}  seq {}  {}", held.seq, flags.join(" "));
            let mut ladder = Vec::new();
            ladder::write_ladder(
                &mut ladder,
                held.bids(),
                held.asks(),
                self.depth,
                held.price_exponent,
            )?;
            screen.push_str(&String::from_utf8_lossy(&ladder));
            screen.push('\n');
        }
        if self.violations > 0 {
            let _ = writeln!(screen, "CONTRACT VIOLATIONS: {}", self.violations);
        }
        for notice in &self.notices {
            let _ = writeln!(screen, "{notice}");
        }
        self.out.write_all(screen.as_bytes())?;
        self.out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_positive_and_may_be_fractions() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-2").is_err());
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn violations_say_how_many_and_how_the_stream_ended() {
        let v = Violations {
            count: 2,
            ended: Some("UNAVAILABLE: pinbook is shutting down".into()),
        };
        assert_eq!(
            v.to_string(),
            "UNAVAILABLE: pinbook is shutting down; 2 contract violations seen (the CONTRACT \
             VIOLATION lines above say which)"
        );
    }
}
