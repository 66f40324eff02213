//! `pinbook orders`, `trades`, `status` and `order`: the order (market by order), trade and
//! status streams of a running server, checked against their contract as they come
//! ([`StreamChecker`]: seq, resyncs, the orders checksum; exit status 3 if broken), and
//! GetOrder's queue position.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Result, anyhow};
use controlplane::pb::{
    self, admin_service_client::AdminServiceClient, book_service_client::BookServiceClient,
    book_update::Update,
};
use controlplane::price::decimal;
use controlplane::stream_contract::StreamChecker;
use dataplane::feed::itch::Side;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::client::{self, AdminArgs, ServerArgs};
use super::subscribe::Violations;

/// Arguments of `pinbook orders`.
#[derive(clap::Args, Debug)]
pub struct OrdersArgs {
    /// The symbols, as the feed lists them.
    #[arg(required = true, value_parser = super::client::parse_symbol)]
    pub symbols: Vec<String>,
    /// Levels per side shown in the queue view (the whole book is held and checked).
    #[arg(long, default_value_t = 5)]
    pub depth: usize,
    /// One JSON object per update on stdout, and at the end each symbol's queues as `replay
    /// --json --orders` prints them ({"symbol", "bids", "asks", "bid_orders", "ask_orders"}).
    #[arg(long)]
    pub json: bool,
    /// When to stop.
    #[command(flatten)]
    pub end: EndArgs,
    /// Where the server is.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of `pinbook trades`.
#[derive(clap::Args, Debug)]
pub struct TradesArgs {
    /// The symbols, as the feed lists them.
    #[arg(required = true, value_parser = super::client::parse_symbol)]
    pub symbols: Vec<String>,
    /// One JSON object per trade (and resync) on stdout.
    #[arg(long)]
    pub json: bool,
    /// When to stop.
    #[command(flatten)]
    pub end: EndArgs,
    /// Where the server is.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of `pinbook status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The symbols; none: every symbol the server publishes (listed with the admin token).
    #[arg(value_parser = super::client::parse_symbol)]
    pub symbols: Vec<String>,
    /// Keep streaming status changes after the current statuses.
    #[arg(long)]
    pub follow: bool,
    /// One JSON object per status on stdout.
    #[arg(long)]
    pub json: bool,
    /// When to stop (with --follow).
    #[command(flatten)]
    pub end: EndArgs,
    /// Where the server and, to list the symbols, the admin token are.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// Arguments of `pinbook order`.
#[derive(clap::Args, Debug)]
pub struct OrderArgs {
    /// The symbol.
    #[arg(value_parser = super::client::parse_symbol)]
    pub symbol: String,
    /// The order's reference.
    pub reference: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Where the server is.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// When a stream command stops (it also stops when every symbol was removed).
#[derive(clap::Args, Debug)]
pub struct EndArgs {
    /// Exit after this many updates (heartbeats not counted).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Exit after this many seconds.
    #[arg(long, value_name = "S")]
    pub seconds: Option<f64>,
}

/// `pinbook orders`.
pub fn orders(args: &OrdersArgs) -> Result<()> {
    let terminal = !args.json && std::io::stdout().is_terminal();
    let mut view = View::new(&args.symbols, args.json);
    let request = request(&args.symbols, pb::Stream::Orders);
    let mut last_draw = std::time::Instant::now();
    let ended = client::streaming_runtime()?.block_on(follow(
        &args.server,
        request,
        &args.end,
        |update, view_found| {
            *view_found += view.apply(&update)?;
            if terminal {
                if last_draw.elapsed() >= Duration::from_millis(100) {
                    view.draw_queues(args.depth, true)?;
                    last_draw = std::time::Instant::now();
                }
            } else {
                view.line(&update)?;
            }
            Ok(false)
        },
    ))?;
    if args.json {
        for symbol in &args.symbols {
            view.queues_json(symbol)?;
        }
    } else {
        view.draw_queues(args.depth, terminal)?;
    }
    view.finish(ended)
}

/// `pinbook trades`.
pub fn trades(args: &TradesArgs) -> Result<()> {
    let mut view = View::new(&args.symbols, args.json);
    let request = request(&args.symbols, pb::Stream::Trades);
    let ended = client::streaming_runtime()?.block_on(follow(
        &args.server,
        request,
        &args.end,
        |update, found| {
            *found += view.apply(&update)?;
            view.line(&update)?;
            Ok(false)
        },
    ))?;
    view.finish(ended)
}

/// `pinbook status`.
pub fn status(args: &StatusArgs) -> Result<()> {
    let runtime = client::streaming_runtime()?;
    let symbols = if args.symbols.is_empty() {
        runtime.block_on(published(&args.admin))?
    } else {
        args.symbols.clone()
    };
    if symbols.is_empty() {
        return Err(anyhow!("the server publishes no symbol yet"));
    }
    let mut view = View::new(&symbols, args.json);
    let request = request(&symbols, pb::Stream::Status);
    let mut waiting = symbols.len();
    let follow_on = args.follow;
    let ended = runtime.block_on(follow(
        &args.admin.server,
        request,
        &args.end,
        |update, found| {
            *found += view.apply(&update)?;
            view.line(&update)?;
            if matches!(update, Update::Status(_)) {
                waiting = waiting.saturating_sub(1);
            }
            // without --follow: done once every symbol's status came
            Ok(!follow_on && waiting == 0)
        },
    ));
    view.finish(ended?)
}

/// `pinbook order`: where one order stands in its queue.
pub fn order(args: &OrderArgs) -> Result<()> {
    let position = client::runtime()?.block_on(async {
        let channel = client::connect(&args.server).await?;
        BookServiceClient::new(channel)
            .get_order(client::book_request(pb::GetOrderRequest {
                symbol: args.symbol.clone(),
                reference: args.reference,
            })?)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| client::status_error(&status))
    })?;
    let order = position.order.unwrap_or_default();
    let level = position.level.unwrap_or_default();
    let exponent = i8::try_from(position.price_exponent).unwrap_or_default();
    let side = pb::Side::try_from(order.side).unwrap_or(pb::Side::Unspecified);
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            json!({
                "symbol": position.symbol, "reference": order.reference,
                "side": side_name(side), "price": order.price, "shares": order.shares,
                "price_exponent": position.price_exponent,
                "orders_ahead": position.orders_ahead, "shares_ahead": position.shares_ahead,
                "level_orders": level.orders, "level_shares": level.shares,
                "incomplete": position.incomplete, "stale": position.stale,
            })
        )?;
    } else {
        writeln!(
            out,
            "{} order {}: {} {} @ {}, {} of {} at its price ({} shares ahead of {})",
            position.symbol,
            order.reference,
            side_name(side),
            order.shares,
            decimal(order.price, exponent),
            position.orders_ahead + 1,
            level.orders,
            position.shares_ahead,
            level.shares,
        )?;
    }
    Ok(())
}

fn request(symbols: &[String], stream: pb::Stream) -> pb::SubscribeRequest {
    pb::SubscribeRequest {
        symbols: symbols.to_vec(),
        depth: 0,
        mode: pb::Mode::Unspecified as i32,
        interval_ms: 0,
        stream: stream as i32,
    }
}

/// Every symbol the server publishes (at most the 1,000 a subscription may name).
async fn published(admin: &AdminArgs) -> Result<Vec<String>> {
    let token = client::admin_token(admin)?;
    let channel = client::connect(&admin.server).await?;
    let list = AdminServiceClient::new(channel)
        .list_symbols(client::authorized(pb::ListSymbolsRequest {}, &token)?)
        .await
        .map_err(|status| client::status_error(&status))?
        .into_inner();
    let mut symbols: Vec<String> = list
        .symbols
        .into_iter()
        .filter(|s| s.state == pb::SymbolState::Published as i32)
        .map(|s| s.symbol)
        .collect();
    symbols.sort();
    symbols.truncate(1000);
    Ok(symbols)
}

/// Subscribes and hands each update to `handle` until `end`, the stream's end, or the removal
/// of every symbol. `Ok(Some(error))` when the stream ended with an error.
async fn follow(
    server: &client::ServerArgs,
    request: pb::SubscribeRequest,
    end: &EndArgs,
    mut handle: impl FnMut(Update, &mut u64) -> Result<bool>,
) -> Result<(Option<anyhow::Error>, u64)> {
    let channel = client::connect(server).await?;
    let symbols = request.symbols.len();
    let mut updates = BookServiceClient::new(channel)
        .subscribe(client::book_request(request)?)
        .await
        .map_err(|status| client::status_error(&status))?
        .into_inner();
    let deadline = end
        .seconds
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let (mut seen, mut found, mut removed) = (0u64, 0u64, 0usize);
    loop {
        if end.count.is_some_and(|n| seen >= n) || removed == symbols {
            return Ok((None, found));
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
                    if matches!(update, Update::Heartbeat(_)) {
                        continue;
                    }
                    seen += 1;
                    removed += usize::from(matches!(update, Update::Removed(_)));
                    if handle(update, &mut found)? {
                        return Ok((None, found));
                    }
                }
                Ok(Some(pb::BookUpdate { update: None })) => {
                    found += 1;
                    eprintln!("pinbook: CONTRACT VIOLATION: an update with nothing in it");
                }
                Ok(None) => {
                    return Ok((Some(anyhow!(
                        "the server ended the stream without a status; resubscribe"
                    )), found));
                }
                Err(status) => return Ok((Some(client::status_error(&status)), found)),
            },
            () = time_up => return Ok((None, found)),
        }
    }
}

/// What a stream command holds and prints.
struct View {
    checker: StreamChecker,
    json: bool,
    out: std::io::StdoutLock<'static>,
}

impl View {
    fn new(symbols: &[String], json: bool) -> Self {
        Self {
            checker: StreamChecker::new(symbols),
            json,
            out: std::io::stdout().lock(),
        }
    }

    /// Checks and applies `update`; returns how many violations it showed (printed to
    /// stderr).
    fn apply(&mut self, update: &Update) -> Result<u64> {
        let found = self.checker.apply(update);
        for text in &found {
            eprintln!("pinbook: CONTRACT VIOLATION: {text}");
        }
        Ok(found.len() as u64)
    }

    /// One line (or JSON object) for `update`.
    fn line(&mut self, update: &Update) -> Result<()> {
        // an order event's prices are in its symbol's unit, as its snapshot said
        let exponent = match update {
            Update::Order(e) => self.checker.held(&e.symbol).map_or(0, |h| h.price_exponent),
            _ => 0,
        };
        let (text, j) = describe(update, exponent);
        if self.json {
            writeln!(self.out, "{j}")?;
        } else {
            writeln!(self.out, "{text}")?;
        }
        Ok(())
    }

    /// Each symbol's best `depth` levels per side with their orders, oldest first.
    fn draw_queues(&mut self, depth: usize, clear: bool) -> Result<()> {
        if clear {
            write!(self.out, "\x1b[H\x1b[2J")?;
        }
        let symbols: Vec<String> = self.symbols();
        for symbol in symbols {
            let Some(held) = self.checker.held(&symbol) else {
                continue;
            };
            let (bids, asks) = levels(held);
            let exponent = held.price_exponent;
            let mut text = format!(
                "{symbol} seq {} {} orders{}{}\n",
                held.seq,
                held.orders.len(),
                if held.incomplete { " INCOMPLETE" } else { "" },
                if held.stale { " STALE" } else { "" }
            );
            for (name, side) in [("ask", &asks), ("bid", &bids)] {
                for (price, orders) in side.iter().take(depth) {
                    let shown: Vec<String> = orders
                        .iter()
                        .take(8)
                        .map(|(r, s)| format!("{s}#{r}"))
                        .collect();
                    let more = orders.len().saturating_sub(8);
                    text.push_str(&format!(
                        "  {name} {:>14} {:>4} orders: {}{}\n",
                        decimal(*price, exponent),
                        orders.len(),
                        shown.join(" "),
                        if more > 0 {
                            format!(" … {more} more")
                        } else {
                            String::new()
                        }
                    ));
                }
            }
            write!(self.out, "{text}")?;
        }
        self.out.flush()?;
        Ok(())
    }

    /// The queues of `symbol` as `replay --json --orders` prints a book.
    fn queues_json(&mut self, symbol: &str) -> Result<()> {
        let Some(held) = self.checker.held(symbol) else {
            return Ok(());
        };
        let (bids, asks) = levels(held);
        let level = |(price, orders): &(i64, Vec<(u64, u64)>)| {
            json!([price, orders.iter().map(|o| o.1).sum::<u64>(), orders.len()])
        };
        let queue = |(_, orders): &(i64, Vec<(u64, u64)>)| {
            Value::from(
                orders
                    .iter()
                    .map(|(r, s)| json!([r, s]))
                    .collect::<Vec<_>>(),
            )
        };
        writeln!(
            self.out,
            "{}",
            json!({
                "symbol": symbol,
                "seq": held.seq,
                "price_exponent": held.price_exponent,
                "bids": bids.iter().map(level).collect::<Vec<_>>(),
                "asks": asks.iter().map(level).collect::<Vec<_>>(),
                "bid_orders": bids.iter().map(queue).collect::<Vec<_>>(),
                "ask_orders": asks.iter().map(queue).collect::<Vec<_>>(),
                "incomplete": held.incomplete,
                "stale": held.stale,
            })
        )?;
        Ok(())
    }

    fn symbols(&self) -> Vec<String> {
        self.checker.symbols()
    }

    /// Ends the command: exit status 3 after a contract violation, else the stream's error.
    fn finish(mut self, (ended, found): (Option<anyhow::Error>, u64)) -> Result<()> {
        self.out.flush()?;
        if found > 0 {
            return Err(Violations {
                count: found,
                ended: ended.map(|e| e.to_string()),
            }
            .into());
        }
        ended.map_or(Ok(()), Err)
    }
}

/// A symbol's orders grouped by level, best first: (price, [(reference, shares)]).
type Levels = Vec<(i64, Vec<(u64, u64)>)>;

fn levels(held: &controlplane::stream_contract::Held) -> (Levels, Levels) {
    // the orders come grouped by level, best first: a new level starts at each new price
    let (mut bids, mut asks): (Levels, Levels) = (Vec::new(), Vec::new());
    for (side, price, reference, shares) in held.orders.orders() {
        let levels = if side == Side::Buy {
            &mut bids
        } else {
            &mut asks
        };
        match levels.last_mut() {
            Some((p, orders)) if *p == price => orders.push((reference, shares)),
            _ => levels.push((price, vec![(reference, shares)])),
        }
    }
    (bids, asks)
}

fn side_name(side: pb::Side) -> &'static str {
    match side {
        pb::Side::Bid => "BID",
        pb::Side::Ask => "ASK",
        pb::Side::Unspecified => "-",
    }
}

/// One line and one JSON object describing `update` (an order event's prices are integers ×
/// 10^`order_exponent`; the other updates carry their own).
fn describe(update: &Update, order_exponent: i8) -> (String, Value) {
    let side = |s: i32| side_name(pb::Side::try_from(s).unwrap_or(pb::Side::Unspecified));
    let exp = |e: i32| i8::try_from(e).unwrap_or_default();
    match update {
        Update::Orders(s) => (
            format!(
                "{} seq {} orders snapshot: {} orders{}",
                s.symbol,
                s.seq,
                s.orders.len(),
                if s.last_chunk {
                    ""
                } else {
                    " (more chunks follow)"
                }
            ),
            json!({"type": "orders_snapshot", "symbol": s.symbol, "seq": s.seq,
                   "orders": s.orders.iter().map(|o| json!([o.reference, side(o.side), o.price, o.shares])).collect::<Vec<_>>(),
                   "checksum": s.checksum, "last_chunk": s.last_chunk,
                   "incomplete": s.incomplete, "stale": s.stale, "price_exponent": s.price_exponent}),
        ),
        Update::Order(e) => {
            let action = pb::OrderAction::try_from(e.action)
                .map_or("?", |a| a.as_str_name().trim_start_matches("ORDER_ACTION_"));
            (
                format!(
                    "{} seq {} {action} {} {} {} @ {}{} left {}",
                    e.symbol,
                    e.seq,
                    e.reference,
                    side(e.side),
                    e.shares,
                    decimal(e.price, order_exponent),
                    if e.new_reference != 0 {
                        format!(" as {}", e.new_reference)
                    } else {
                        String::new()
                    },
                    e.remaining
                ),
                json!({"type": "order", "symbol": e.symbol, "seq": e.seq, "action": action,
                       "reference": e.reference, "new_reference": e.new_reference,
                       "side": side(e.side), "price": e.price, "shares": e.shares,
                       "match_number": e.match_number, "remaining": e.remaining,
                       "checksum": e.checksum}),
            )
        }
        Update::Trade(t) => {
            let kind = pb::TradeKind::try_from(t.kind)
                .map_or("?", |k| k.as_str_name().trim_start_matches("TRADE_KIND_"));
            (
                format!(
                    "{} seq {} {kind} {} @ {} match {} resting {}{}",
                    t.symbol,
                    t.seq,
                    t.shares,
                    decimal(t.price, exp(t.price_exponent)),
                    t.match_number,
                    side(t.resting_side),
                    if t.printable { "" } else { " (not printable)" }
                ),
                json!({"type": "trade", "symbol": t.symbol, "seq": t.seq, "kind": kind,
                       "price": t.price, "price_exponent": t.price_exponent, "shares": t.shares,
                       "match_number": t.match_number, "resting_side": side(t.resting_side),
                       "printable": t.printable, "cross_type": t.cross_type,
                       "exchange_ns": t.timestamps.map(|x| x.exchange_ns)}),
            )
        }
        Update::Status(s) => {
            let state = pb::TradingState::try_from(s.state).map_or("?", |k| {
                k.as_str_name().trim_start_matches("TRADING_STATE_")
            });
            let change = pb::StatusChange::try_from(s.change).map_or("?", |k| {
                k.as_str_name().trim_start_matches("STATUS_CHANGE_")
            });
            let mut text = format!("{} seq {} {change}: {state}", s.symbol, s.seq);
            if !s.reason.is_empty() {
                text.push_str(&format!(" ({})", s.reason));
            }
            if s.short_sale_restricted {
                text.push_str(" reg-sho-restricted");
            }
            let exponent = exp(s.price_exponent);
            if let Some(l) = &s.luld {
                text.push_str(&format!(
                    " luld {}..{}",
                    decimal(l.lower_price, exponent),
                    decimal(l.upper_price, exponent)
                ));
            }
            if let Some(i) = &s.imbalance {
                text.push_str(&format!(
                    " imbalance {} {} paired {}",
                    i.imbalance_shares,
                    char::from_u32(i.direction).unwrap_or('?'),
                    i.paired_shares
                ));
            }
            if let Some(m) = &s.mwcb
                && m.breached > 0
            {
                text.push_str(&format!(" MWCB level {} breached", m.breached));
            }
            let j = json!({"type": "status", "symbol": s.symbol, "seq": s.seq, "change": change,
                           "state": state, "reason": s.reason,
                           "short_sale_restricted": s.short_sale_restricted,
                           "luld": s.luld.map(|l| json!({"reference": l.reference_price, "upper": l.upper_price, "lower": l.lower_price, "extension": l.extension})),
                           "ipo": s.ipo.map(|i| json!({"release_time_s": i.release_time_s, "qualifier": i.qualifier, "price": i.price})),
                           "imbalance": s.imbalance.map(|i| json!({"paired": i.paired_shares, "imbalance": i.imbalance_shares, "direction": i.direction, "far": i.far_price, "near": i.near_price, "reference": i.reference_price})),
                           "mwcb": s.mwcb.map(|m| json!({"levels": [m.level1, m.level2, m.level3], "breached": m.breached})),
                           "price_exponent": s.price_exponent});
            (text, j)
        }
        Update::Resync(r) => {
            let reason = pb::ResyncReason::try_from(r.reason)
                .unwrap_or(pb::ResyncReason::Unspecified)
                .as_str_name();
            (
                format!("resync {}: {reason} ({})", r.symbol, r.detail),
                json!({"type": "resync", "symbol": r.symbol, "reason": reason, "detail": r.detail}),
            )
        }
        Update::Removed(r) => (
            format!(
                "removed {} at seq {}: the server no longer publishes it",
                r.symbol, r.seq
            ),
            json!({"type": "removed", "symbol": r.symbol, "seq": r.seq}),
        ),
        Update::Heartbeat(h) => (
            format!("heartbeat {}", h.send_ns),
            json!({ "heartbeat": h.send_ns }),
        ),
        Update::Snapshot(s) => (
            format!("{} seq {} level snapshot", s.symbol, s.seq),
            json!({"type": "snapshot", "symbol": s.symbol, "seq": s.seq}),
        ),
        Update::Delta(d) => (
            format!("{} seq {} level delta", d.symbol, d.seq),
            json!({"type": "delta", "symbol": d.symbol, "seq": d.seq}),
        ),
    }
}
